"""Run the service under real gunicorn workers and talk to it over HTTP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from conftest import API, ROOT, free_port


@dataclass
class Reply:
    status: int
    body: dict
    headers: dict


def _json(raw: bytes) -> dict:
    """The body as JSON; anything else is kept under "not_json" for the test to see."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {"not_json": raw.decode(errors="replace")}
    return body if isinstance(body, dict) else {"not_json": body}


class LiveServer:
    """`gunicorn -w N wsgi:app` in a subprocess, configured by FAVSYNC_* variables."""

    def __init__(self, environment: dict[str, str], workers: int = 4) -> None:
        self.port = free_port()
        # A file, not a pipe: nobody reads a pipe while the server runs, and a full one blocks it.
        self.log = tempfile.NamedTemporaryFile(prefix="favsync-gunicorn-", suffix=".log", delete=False)
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "FAVSYNC_MAGIC_LINK_URL": f"{self.url}{API}/verify/{{token}}",
            # "{server}" in a setting stands for this server's URL (picked only now).
            **{key: value.replace("{server}", self.url) for key, value in environment.items()},
        }
        self.environment = env
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
             "--timeout", "60", "wsgi:app"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.output()}")
            try:
                if self.request("GET", "/healthz").status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start serving within 30 seconds")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def command(self, *args: str) -> str:
        """Run `flask --app wsgi ARGS` against this server's configuration; return its output."""
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT, env=self.environment, check=True, capture_output=True, text=True, timeout=120,
        )
        return done.stdout

    def request(self, method: str, path: str, body=None, headers=None) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(response.status, _json(response.read()), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Reply(error.code, _json(error.read()), dict(error.headers))

    def login(self, inbox, address: str, headers=None) -> Reply:
        """Request a link for `address` and follow it from the email; the verify reply."""
        count = len(inbox.received(address)) + 1  # the server delivers after it answers
        asked = self.request("POST", f"{API}/magic-link", {"email": address}, headers)
        assert asked.status == 202, asked.body
        return self.request("GET", urlsplit(inbox.link_for(address, count)).path)

    def race(self, count: int, method: str, path: str, bodies=None, headers=None) -> list[Reply]:
        """Send `count` requests released at the same instant from `count` threads."""
        start = threading.Barrier(count)

        def one(index: int) -> Reply:
            start.wait()
            body = bodies[index] if bodies is not None else None
            return self.request(method, path, body, headers)

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))


class CeleryWorker:
    """`celery -A wsgi:celery worker` in a subprocess, with a server's configuration."""

    def __init__(self, environment: dict[str, str], name: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix=f"favsync-{name}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "wsgi:celery", "worker", "--pool", "solo",
             "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel", "INFO"],
            cwd=ROOT, env=environment, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to kill it whole
        )
        deadline = time.monotonic() + 60
        while " ready." not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-send, acknowledging nothing."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
