"""README.md as a user follows it: `make run` on a port of their choice, the curl walk-through,
the landing page for the emailed link."""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import API, ROOT, free_port

pytestmark = pytest.mark.server

WALK_THROUGH = "Walk-through with curl"


def blocks(section: str, language: str) -> list[str]:
    """The ```language blocks of one README section, in order."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", body, re.S)


@contextlib.contextmanager
def make_run(tmp_path, *make_args, **environment):
    """Run `make run` in the checkout (its database in tmp_path) until the block ends."""
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "FLASK_RUN_PORT", "FLASK_DEBUG")}
    env.update(environment, FAVSYNC_INSTANCE_PATH=str(tmp_path / "instance"))
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(["make", "run", *make_args], cwd=ROOT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield log
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # make, flask and its reloader
        process.wait(timeout=30)


def wait_for(port: int, log) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"make run did not serve on {port}:\n{log.read_text()}")


def bash(script: str) -> str:
    done = subprocess.run(["bash", "-euc", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def console_link(log, port: int, count: int = 1) -> str:
    """The secret of the `count`th sign-in link that `make run` prints (just after it answers)."""
    pattern = re.compile(rf"http://127\.0\.0\.1:{port}/demo/verify\?token=(\S+)")
    deadline = time.monotonic() + 30
    while len(found := pattern.findall(log.read_text())) < count:
        assert time.monotonic() < deadline, f"no sign-in link in the console:\n{log.read_text()}"
        time.sleep(0.1)
    return found[count - 1]


def documents(text: str) -> list[dict]:
    """Every JSON document in `text` (debug mode indents them over several lines)."""
    decoder, found, position = json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) != -1:
        document, position = decoder.raw_decode(text, start)
        found.append(document)
    return found


def without_token(document: dict) -> dict:
    return {**document, **{key: "..." for key in ("auth_token", "access_token") if key in document}}


def test_the_email_template_shown_is_the_one_the_host_site_overrides_with():
    [shown] = blocks("Embedding in an existing Flask site", "jinja")
    assert shown == (ROOT / "tests/templates/favsync/email/magic_link.txt").read_text()


@pytest.mark.parametrize("how", [("PORT={port}",), ()], ids=["make-variable", "FLASK_RUN_PORT"])
def test_make_run_serves_on_the_port_given(tmp_path, how):
    port = free_port()
    args = [arg.format(port=port) for arg in how]
    environment = {} if args else {"FLASK_RUN_PORT": str(port)}

    with make_run(tmp_path, *args, **environment) as log:
        assert wait_for(port, log) == {"status": "ok"}


def test_the_curl_walk_through_answers_as_shown_and_writes_nothing_into_the_checkout(tmp_path):
    port = free_port()
    ask, verify, *rest, seed_login = (
        block.replace("127.0.0.1:5000", f"127.0.0.1:{port}") for block in blocks(WALK_THROUGH, "sh")
    )
    shown = documents("".join(blocks(WALK_THROUGH, "(?:json|text)")))
    checkout_before = bash("git status --porcelain --ignored")

    with make_run(tmp_path, f"PORT={port}") as log:
        wait_for(port, log)
        answers = documents(bash(ask))
        token = console_link(log, port)
        verify = verify.replace("paste-the-token-from-the-link-here", token)
        answers += documents(bash(verify + "".join(rest)))
        bash(ask)  # step 6: a new link for seed 002's login
        answers += documents(bash(f"TOKEN={console_link(log, port, count=2)}\n" + seed_login))

    assert [without_token(answer) for answer in answers] == [without_token(s) for s in shown]
    assert answers[1]["auth_token"].startswith("eyJ")
    assert bash("git status --porcelain --ignored") == checkout_before


def test_make_runs_request_log_holds_no_secret_of_a_url(tmp_path):
    # werkzeug's development server logs every request line, its URL whole.
    port = free_port()
    urls = {
        f"{API}/verify/pathSecret0123456789": f"GET {API}/verify/*** HTTP/1.1",
        f"{API}/unsubscribe/signedClient0123456789": f"GET {API}/unsubscribe/*** HTTP/1.1",
        "/demo/verify?token=querySecret0123456789&next=/x": "GET /demo/verify?token=***&next=/x HTTP/1.1",
    }

    with make_run(tmp_path, f"PORT={port}") as log:
        wait_for(port, log)
        for url in urls:
            with contextlib.suppress(urllib.error.HTTPError):  # 400, 404: logged all the same
                urllib.request.urlopen(f"http://127.0.0.1:{port}{url}", timeout=10).close()
        deadline = time.monotonic() + 30
        while not all(line in log.read_text() for line in urls.values()):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    text = log.read_text()
    assert "GET /healthz HTTP/1.1" in text  # other lines as they were
    assert not any(secret in text for secret in ("pathSecret", "signedClient", "querySecret"))


# Runs a page's script in Node.js with just enough of a browser: a button to
# click, localStorage, location; fetch goes to a real favsync and is recorded.
BROWSER = """
const fs = require("fs");
const vm = require("vm");
const [base, token, script] = process.argv.slice(2);
const calls = [];
const store = {hearts: JSON.stringify(["C9231328", "98970014"])};
const elements = {};
const element = (id) => (elements[id] ??= {
  textContent: "", listeners: {}, addEventListener(type, f) { this.listeners[type] = f; },
});
const page = vm.createContext({
  document: {getElementById: element},
  location: {search: `?token=${token}`, assign(url) { calls.push({assign: url}); }},
  localStorage: {getItem: (k) => store[k] ?? null, setItem: (k, v) => { store[k] = String(v); }},
  URLSearchParams,
  fetch: async (url, options) => { calls.push({url, ...options}); return fetch(base + url, options); },
});
vm.runInContext(fs.readFileSync(script, "utf8"), page);
const onLoad = calls.length;
element("sign-in").listeners.click().then(() => console.log(JSON.stringify(
  {onLoad, calls, hearts: JSON.parse(store.hearts), status: element("status").textContent})));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the README's page")
def test_the_landing_page_signs_in_only_when_the_visitor_clicks(start_server, inbox, tmp_path):
    server = start_server()
    assert server.request("POST", f"{API}/magic-link", {"email": "v@example.com"}).status == 202
    token = inbox.link_for("v@example.com").rsplit("/", 1)[1]
    [page] = blocks("Login flow for a brokerage front end", "html")
    (tmp_path / "page.js").write_text(re.search(r"<script>(.*)</script>", page, re.S).group(1))
    (tmp_path / "browser.js").write_text(BROWSER)

    ran = subprocess.run(["node", "browser.js", server.url, token, "page.js"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)

    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["onLoad"] == 0  # opening the page (a mail scanner) sends nothing
    verify, sync, leave = result["calls"]
    assert (verify["url"], verify["method"], verify["credentials"]) == (f"{API}/verify", "POST", "include")
    assert json.loads(verify["body"]) == {"token": token}
    assert (sync["url"], json.loads(sync["body"])) == (f"{API}/sync", {"favorites": ["C9231328", "98970014"]})
    assert leave == {"assign": "/"}
    assert result["hearts"] == ["C9231328", "98970014"] and result["status"] == ""
    assert server.request("POST", f"{API}/verify", {"token": token}).body["error"]["code"] == "token_used"
