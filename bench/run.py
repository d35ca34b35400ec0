"""`make bench`: favsync against the least-work reference, in alternating rounds of one run.

Creates a fresh PostgreSQL database, seeds it in SQL and starts an SMTP sink.
favsync (wsgi:app) and the reference (bench/bare_app.py) are served side by side
by gunicorn with gunicorn.conf.py and the same worker settings, both up for the
whole run. For each scenario, after a warm-up of each app, every round loads one
app for a slice of a second and then the other, the order swapped each round
(ABBA), the load driven by bench/load.py from a separate process that keeps its
connections to both apps open across the slices. Only one app is loaded at a time.

req/s is the ok answers of all rounds over their measured seconds; p50 and p99
are over every measured request of all rounds; the range is the rounds' req/s.
The ratio of favsync to the reference is the median of the rounds' ratios (each
round measures both apps back to back), with their range. Before each scenario
the databases are vacuumed and checkpointed: what an earlier scenario wrote is
not cleaned up during this one's rounds.

--scale also serves a second database holding 100,000 more clients with
1,000,000 favourites, and measures it in the same rounds as the small one.
--compare-workers measures favsync and the reference under several gunicorn
worker models instead. The databases are dropped at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import runpy
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import psycopg
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URI = os.environ.get("BENCH_REDIS_URI", "redis://127.0.0.1:6379/0")
BROKER_URI = os.environ.get("BENCH_BROKER_URI", "amqp://guest:guest@127.0.0.1:5672//")
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
API = "/api/v1/favorites"
LIST_CLIENTS = range(1, 201)  # hold 50 favourites each
BIG_CLIENTS = range(201, 301)  # hold 500
FRESH_FROM = 10_000_000  # fresh clients' ids: beyond any the id sequence hands out here
HELD = [f"L-{n}" for n in range(1, 51)] + [f"N-{n}" for n in range(450)]  # a big client's 500
NEW = [f"A-{n}" for n in range(500)]  # what a fresh client adds
FAVSYNC, REFERENCE = "wsgi:app", "bare_app:app"
# gunicorn worker models that fit 2 cores: (worker class, workers, threads per worker).
WORKER_MODELS = [("sync", 2, 1), ("sync", 4, 1), ("gthread", 2, 2), ("gthread", 2, 4),
                 ("gthread", 4, 2)]
SCALE_TARGET = 1 / 1.2  # at 1,000,000 rows, at least this share of the small table's req/s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def bearer(client_id: int) -> dict:
    now = int(time.time())
    claims = {"client_id": client_id, "brokerage_id": 1, "email": f"bench{client_id}@example.com",
              "iat": now, "exp": now + 86400, "type": "favorites_auth", "sid": f"bench-{client_id}"}
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


# -- the data ----------------------------------------------------------------------


def create_database(name: str) -> str:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def drop_database(name: str, tries: int = 30) -> None:
    """Drop the database, waiting out a PostgreSQL restart (others' tests may restart it)."""
    for attempt in range(tries):
        try:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.OperationalError:
            if attempt == tries - 1:
                raise
            time.sleep(1)


def seed(dsn: str) -> None:
    """300 clients: 1-200 hold 50 favourites, 201-300 hold 500; each with a session."""
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("INSERT INTO favsync_clients (brokerage_id, email)"
                   " SELECT 1, 'bench' || g || '@example.com' FROM generate_series(1, 300) g")
        db.execute("INSERT INTO favsync_favorites (client_id, listing_id)"
                   " SELECT c, 'L-' || f FROM generate_series(1, 300) c, generate_series(1, 50) f")
        db.execute("INSERT INTO favsync_favorites (client_id, listing_id)"
                   " SELECT c, 'N-' || f FROM generate_series(%s::int, %s::int) c, generate_series(0, 449) f",
                   (BIG_CLIENTS.start, BIG_CLIENTS.stop - 1))
        db.execute(_SESSIONS, (1, 300))
        db.execute("ANALYZE")


# One signed-in session per client: the `sid` of the bench's tokens.
_SESSIONS = ("INSERT INTO favsync_refresh_tokens"
             " (client_id, family, token, created_at, expires_at, family_started_at)"
             " SELECT g, 'bench-' || g, encode(sha256(('bench-' || g)::bytea), 'hex'),"
             " now(), now() + interval '1 day', now() FROM generate_series(%s::int, %s::int) g")


def seed_fresh(dsn: str, clients: range) -> None:
    """Clients holding no favourites, each signed in (as bearer() names them)."""
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("INSERT INTO favsync_clients (id, brokerage_id, email)"
                   " SELECT g, 1, 'bench' || g || '@example.com' FROM generate_series(%s::int, %s::int) g",
                   (clients.start, clients.stop - 1))
        db.execute(_SESSIONS, (clients.start, clients.stop - 1))


class FreshClients:
    """Hands out ranges of new clients, never the same twice, seeded where they are asked for."""

    def __init__(self) -> None:
        self.next = FRESH_FROM

    def take(self, dsn: str, count: int) -> range:
        clients = range(self.next, self.next + count)
        self.next += count
        seed_fresh(dsn, clients)
        return clients


def scale(dsn: str) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("INSERT INTO favsync_clients (brokerage_id, email)"
                   " SELECT 1, 'scale' || g || '@example.com' FROM generate_series(1, 100000) g")
        db.execute("INSERT INTO favsync_favorites (client_id, listing_id)"
                   " SELECT c.id, 'S-' || f FROM favsync_clients c, generate_series(1, 10) f"
                   " WHERE c.email LIKE 'scale%'")
        db.execute("ANALYZE")
    return time.perf_counter() - started


def plan(dsn: str) -> str:
    """How PostgreSQL runs the reference's one-statement read for client 7."""
    from bare_app import READ

    with psycopg.connect(dsn) as db:
        rows = db.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) " + READ,
                          {"client": 7, "brokerage": 1, "domain": "127.0.0.1",
                           "email": "bench7@example.com", "iat": int(time.time()),
                           "sid": "bench-7"})
        return "\n".join(row[0] for row in rows)


def postgres_started() -> str:
    """When the PostgreSQL server started: a restart during a run makes it invalid."""
    with psycopg.connect(ADMIN_DSN) as db:
        return str(db.execute("SELECT pg_postmaster_start_time()").fetchone()[0])


def row_count(dsn: str) -> int:
    with psycopg.connect(dsn) as db:
        return db.execute("SELECT count(*) FROM favsync_favorites").fetchone()[0]


def undelivered(dsn: str) -> int:
    with psycopg.connect(dsn) as db:
        return db.execute("SELECT count(*) FROM favsync_outbox WHERE status <> 'sent'").fetchone()[0]


def delivery_throughput(env: dict, dsn: str, limit: float = 120) -> tuple[int, float]:
    """Start one Celery worker (one process) on the emails the magic-link scenario queued;
    return how many it sent and how long that took."""
    backlog = undelivered(dsn)
    log = tempfile.TemporaryFile()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "wsgi:celery", "worker", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )
    started = time.perf_counter()
    try:
        while undelivered(dsn) and time.perf_counter() - started < limit:
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return backlog - undelivered(dsn), elapsed


def drop_queue(queue: str) -> None:
    from kombu import Connection

    with Connection(BROKER_URI) as connection:
        connection.default_channel.queue_delete(queue)


# -- the servers -------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerModel:
    kind: str  # gunicorn's worker class: sync or gthread
    workers: int
    threads: int = 1
    connections: int = 16  # the load's, kept alive

    def __str__(self) -> str:
        if self.kind == "sync":
            return f"{self.workers} sync workers"
        return f"gthread, {self.workers} workers x {self.threads} threads"

    def options(self) -> list[str]:
        # Kept-alive connections outlive the slices a target sits out (--scale's four
        # targets: up to 6 s, past gunicorn.conf.py's 5), so no app's slice begins
        # by opening its connections again.
        chosen = ["--worker-class", self.kind, "--workers", str(self.workers), "--keep-alive", "30"]
        if self.kind == "sync":  # one request per connection, accepted by a free worker
            return chosen
        # A gthread worker accepts every connection it is quick enough to take: the
        # load's burst of kept-alive connections could land 16/0 on one worker, and
        # that round ran on one process at about half its req/s (seen in both apps'
        # rounds, at random: most of the rounds' spread). Capped at an even share and
        # its threads (gthread keeps worker_connections - threads alive), each worker
        # holds 6 to 10 of 16 connections, as many requests in flight as it can serve.
        cap = -(-self.connections // self.workers) + self.threads
        return [*chosen, "--threads", str(self.threads), "--worker-connections", str(cap)]


@dataclass
class Target:
    """One app on one database, served by its own gunicorn."""

    label: str
    app: str
    dsn: str
    port: int = 0
    log: Any = None  # gunicorn's stderr (the apps' errors too), kept for the report

    def log_tail(self, lines: int = 25) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])


def server_env(target: Target, env: dict, model: WorkerModel) -> dict:
    return {**env, "BENCH_DSN": target.dsn, "BENCH_THREADS": str(model.threads),
            "FAVSYNC_SQLALCHEMY_DATABASE_URI":
                target.dsn.replace("postgresql://", "postgresql+psycopg://", 1)}


@contextlib.contextmanager
def gunicorn(target: Target, env: dict, model: WorkerModel):
    target.port = free_port()
    log = target.log = tempfile.TemporaryFile()
    args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *model.options(),
            "--bind", f"127.0.0.1:{target.port}", "--pythonpath", "bench", target.app]
    process = subprocess.Popen(args, cwd=ROOT, env=server_env(target, env, model),
                               stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_until_answering(target, process, log)
        yield target
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_answering(target: Target, process: subprocess.Popen, log, limit: float = 60) -> None:
    """Until the app answers a GET with 200 (gunicorn's port opens before its workers load)."""
    deadline = time.monotonic() + limit
    probe = urllib.request.Request(f"http://127.0.0.1:{target.port}{API}", headers=bearer(1))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(probe, timeout=5) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.2)
    log.seek(0)
    raise RuntimeError(f"{target.label} ({target.app}) did not start:\n"
                       + log.read().decode(errors="replace")[-3000:])


@contextlib.contextmanager
def serving(targets: list[Target], env: dict, model: WorkerModel):
    with contextlib.ExitStack() as stack:
        for target in targets:
            stack.enter_context(gunicorn(target, env, model))
        yield


# -- the scenarios -----------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    # requests(target, count) -> (requests, bodies) for bench/load.py; `count` is how
    # many a round may send, for scenarios whose every request must be new.
    requests: Callable[[Target, int], tuple[list, list]]
    target: float | None = None  # the least favsync/reference req/s ratio issue 15 asks
    unique: bool = False  # every request must be new: the list must not wrap around
    favsync_only: bool = False


def scenarios(fresh: FreshClients) -> list[Scenario]:
    sync = f"{API}/sync"

    def adding(target: Target, count: int):
        return [["POST", sync, bearer(c), 0] for c in fresh.take(target.dsn, count)], \
            [{"favorites": NEW}]

    def magic_links(target: Target, count: int):
        run = uuid.uuid4().hex[:8]  # at most three pending links per email
        return [["POST", f"{API}/magic-link", {}, n] for n in range(count)], \
            [{"email": f"{run}-{n}@example.com"} for n in range(count)]

    return [
        Scenario("GET favorites (50 held)",
                 lambda t, n: ([["GET", API, bearer(c), None] for c in LIST_CLIENTS], []),
                 target=0.85),
        Scenario("POST sync, 10 known ids",
                 lambda t, n: ([["POST", sync, bearer(c), 0] for c in LIST_CLIENTS],
                               [{"favorites": HELD[:10]}]),
                 target=0.8),
        Scenario("POST sync, 500 held ids",
                 lambda t, n: ([["POST", sync, bearer(c), 0] for c in BIG_CLIENTS],
                               [{"favorites": HELD}])),
        # Each request to a client that holds nothing yet: 500 rows written.
        Scenario("POST sync, adding 500 ids", adding, target=0.8, unique=True),
        Scenario("POST magic-link", magic_links, unique=True, favsync_only=True),
    ]


# -- measuring ---------------------------------------------------------------------


def load(targets: list[dict], order: list[int], args, warm_up: float | None = None) -> dict:
    """bench/load.py's run: each of `targets` ({port, requests, bodies}) warmed up in
    turn, then loaded slice by slice, one slice per index in `order`."""
    spec = {"targets": targets, "order": order, "concurrency": args.concurrency,
            "warm_up": args.warm_up if warm_up is None else warm_up, "slice": args.seconds}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec_file:
        json.dump(spec, spec_file)
    try:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), spec_file.name],
                             check=True, capture_output=True, text=True)
    finally:
        os.unlink(spec_file.name)
    return json.loads(out.stdout)


def warm(targets: list[Target], args, seconds: float = 2) -> None:
    """Every worker up, its pool and caches warm: GETs at each target in turn."""
    load([{"port": target.port, "requests": [["GET", API, bearer(c), None] for c in LIST_CLIENTS],
           "bodies": []} for target in targets], [], args, warm_up=seconds)


def settle(databases: set[str]) -> None:
    """Clean up what earlier scenarios (and this one's seeding) left before a scenario
    is measured: the rows an adding scenario writes make autovacuum and checkpoints
    run minutes later, in the next one's rounds."""
    for dsn in databases:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute("VACUUM (ANALYZE)")
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute("CHECKPOINT")


class Rounds:
    """Measures scenarios on targets in alternating rounds and keeps every result."""

    def __init__(self, args) -> None:
        self.args = args
        self.results: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self.targets: dict[str, Target] = {}  # by label
        self.peak_rate: dict[str, float] = defaultdict(lambda: 1000.0)  # req/s: a first guess, high
        self.warnings: list[str] = []

    def run(self, scenario: Scenario, targets: list[Target]) -> None:
        """All rounds of `scenario` in one load: each round a slice per target, ABBA."""
        indexes = list(range(len(targets)))
        order = [i for r in range(self.args.rounds) for i in (indexes if r % 2 == 0 else indexes[::-1])]
        loads = []
        for target in targets:
            requests, bodies = scenario.requests(target, self.budget(scenario))
            loads.append({"port": target.port, "requests": requests, "bodies": bodies})
        settle({target.dsn for target in targets})
        result = load(loads, order, self.args)
        for i, target in enumerate(targets):
            self.results[target.label, scenario.name] += [s for s in result["slices"] if s["target"] == i]
            self.targets[target.label] = target
            self.peak_rate[scenario.name] = max(self.peak_rate[scenario.name],
                                                result["sent"][i] / self.window())
            if scenario.unique and result["sent"][i] > result["listed"][i]:
                self.warn(f"{target.label}, {scenario.name}: the load wrapped around its "
                          f"{result['listed'][i]} requests ({result['sent'][i]} sent): some repeated")
        for n, measured in enumerate(result["slices"]):
            summary = Summary.of([measured])
            print(f"  round {n // len(targets) + 1}: {targets[measured['target']].label:<28} "
                  f"{scenario.name:<28} {summary.rps:7.0f} req/s  p50 {summary.p50:6.1f} ms  "
                  f"non-2xx {summary.bad}", file=sys.stderr, flush=True)

    def window(self) -> float:
        """The seconds one target is loaded in a scenario, its warm-up included."""
        return self.args.warm_up + self.args.rounds * self.args.seconds

    def budget(self, scenario: Scenario) -> int:
        """How many new requests a target may be sent: half as many again as the fastest yet."""
        return int(self.peak_rate[scenario.name] * self.window() * 1.5) + 100

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        print("WARNING: " + message, file=sys.stderr, flush=True)

    def summary(self, target: Target, scenario: Scenario) -> Summary:
        return Summary.of(self.results[target.label, scenario.name])


@dataclass
class Summary:
    rps: float
    p50: float
    p99: float
    bad: int  # non-2xx answers, connection errors (status 0) included
    statuses: dict = field(default_factory=dict)
    round_rps: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, results: list[dict]) -> Summary:
        latencies = sorted(ms for result in results for ms in result["latencies_ms"])
        statuses = defaultdict(int)
        for result in results:
            for status, n in result["statuses"].items():
                statuses[int(status)] += n
        ok = sum(result["ok"] for result in results)
        elapsed = sum(result["elapsed"] for result in results)
        return cls(
            rps=ok / elapsed,
            p50=latencies[len(latencies) // 2] if latencies else float("nan"),
            p99=latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
            bad=len(latencies) - ok,
            statuses=dict(statuses),
            round_rps=[result["ok"] / result["elapsed"] for result in results],
        )

    def cells(self) -> tuple:
        spread = f" ({min(self.round_rps):.0f}-{max(self.round_rps):.0f})" if len(self.round_rps) > 1 else ""
        return (f"{self.rps:.0f}{spread}", f"{self.p50:.1f}", f"{self.p99:.1f}",
                str(self.bad) if not self.bad else f"{self.bad} !!")


def paired_ratio(a: Summary, b: Summary) -> tuple[float, float, float]:
    """a's req/s over b's round by round (a round measures both, one right after the
    other): the median of the rounds' ratios, and the least and greatest of them.

    On this shared machine one app's round now and then runs at two thirds of its
    speed (another tenant's load); the median of paired rounds is not moved by one
    such round, the ratio of the totals is.
    """
    # A slice without one ok answer has no ratio; its failures make the run invalid.
    ratios = [x / y for x, y in zip(a.round_rps, b.round_rps, strict=True) if y]
    if not ratios:
        return math.nan, math.nan, math.nan
    return statistics.median(ratios), min(ratios), max(ratios)


def verdict(ratios: tuple[float, float, float], target: float | None, valid: bool) -> str:
    ratio, least, most = ratios
    shown = f"{ratio:.2f} ({least:.2f}-{most:.2f})"
    if not valid:
        return f"{shown} INVALID (non-2xx)"
    if target is None:
        return shown
    return f"{shown} (target >= {target:.2f}) {'met' if ratio >= target else 'NOT met'}"


def table(rows: list[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def comparison_rows(rounds: Rounds, favsync: Target, reference: Target,
                    chosen: list[Scenario], first: tuple = ()) -> list[tuple]:
    """favsync beside the reference, one row per scenario, with the ratio of their req/s."""
    rows = []
    for scenario in chosen:
        f = rounds.summary(favsync, scenario)
        if scenario.favsync_only:
            rows.append((*first, scenario.name, *f.cells(), "-", "-", "-", "-", "favsync only"))
            continue
        b = rounds.summary(reference, scenario)
        rows.append((*first, scenario.name, *f.cells(), *b.cells(),
                     verdict(paired_ratio(f, b), scenario.target, not (f.bad or b.bad))))
    return rows


COMPARISON_HEADER = ("scenario", "favsync req/s", "p50 ms", "p99 ms", "non-2xx",
                     "reference req/s", "p50 ms", "p99 ms", "non-2xx",
                     "favsync / reference, median of rounds (range)")


def report_validity(rounds: Rounds) -> bool:
    """Print the warnings, and every target and scenario that saw a non-2xx answer, with the
    end of that server's log: such a run is not valid."""
    for message in rounds.warnings:
        print(f"WARNING: {message}")
    valid = True
    for (label, name), results in rounds.results.items():
        summary = Summary.of(results)
        if summary.bad:
            if valid:
                print("\n!!! INVALID RUN: non-2xx answers (status 0: connection errors) !!!")
            valid = False
            print(f"!!! {label}, {name}: {summary.bad} non-2xx answers, statuses "
                  f"{dict(sorted(summary.statuses.items()))}; the end of its log:\n"
                  f"{rounds.targets[label].log_tail()}")
    return valid


# -- the modes ---------------------------------------------------------------------


def describe(args, model: WorkerModel | str) -> str:
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, PostgreSQL and Redis on 127.0.0.1; gunicorn {model}; "
            f"load: {args.concurrency} connections per app (keep-alive where the server allows) "
            f"from a separate process; per scenario {args.warm_up:g} s of warm-up per app, then "
            f"{args.rounds} rounds, each a slice of {args.seconds:g} s per app, one app at a "
            f"time, the order swapped every round.\n"
            "req/s: ok answers of all rounds / their measured seconds (the rounds' range in "
            "brackets); p50, p99: over every measured request.\n")


def bench(args, env: dict, small: str, big: str | None) -> bool:
    """favsync beside the reference (and, with a big database, each at both sizes)."""
    model = WorkerModel(args.worker_class, args.workers, args.threads, args.concurrency)
    print(describe(args, model))
    fresh = FreshClients()
    favsync, reference = Target("favsync", FAVSYNC, small), Target("reference", REFERENCE, small)
    targets = [favsync, reference]
    if big:
        favsync_big = Target("favsync at 1,000,000 rows", FAVSYNC, big)
        reference_big = Target("reference at 1,000,000 rows", REFERENCE, big)
        targets += [favsync_big, reference_big]
    chosen = [scenario for scenario in scenarios(fresh)
              if not args.only or any(part in scenario.name for part in args.only)]
    rounds = Rounds(args)
    seeded = [row_count(small), row_count(big)] if big else []
    with serving(targets, env, model):
        warm(targets, args)
        for scenario in chosen:
            rounds.run(scenario, [favsync] if scenario.favsync_only else targets)
    print(table([COMPARISON_HEADER, *comparison_rows(rounds, favsync, reference, chosen)]))
    named = {scenario.name: scenario for scenario in chosen}
    if {"POST magic-link", "GET favorites (50 held)"} <= named.keys():
        magic = (rounds.summary(favsync, named["POST magic-link"]).p50
                 / rounds.summary(favsync, named["GET favorites (50 held)"]).p50)
        print(f"\nfavsync POST magic-link p50 / GET favorites p50: {magic:.2f} (target: at most 1.5)")
        sent, seconds = delivery_throughput(server_env(favsync, env, model), small)
        print(f"one Celery worker (one process) delivered {sent:,} queued emails to the SMTP sink "
              f"in {seconds:.1f} s: {sent / seconds:.0f} emails/s")
    if big:
        print_scale(rounds, chosen, targets, seeded, [row_count(small), row_count(big)])
    return report_validity(rounds)


def print_scale(rounds: Rounds, chosen: list[Scenario], targets: list[Target],
                seeded: list[int], at_end: list[int]) -> None:
    favsync, reference, favsync_big, reference_big = targets
    print(f"\nthe same rounds on a second database with 100,000 more clients holding 1,000,000 "
          f"favourites. favsync_favorites: {seeded[0]:,} and {seeded[1]:,} rows as seeded, "
          f"{at_end[0]:,} and {at_end[1]:,} at the end (the adding scenario, measured after "
          "the ones above it, grew both)\n")
    rows = [("scenario", "favsync req/s small", "p50 ms", "at scale", "p50 ms",
             "favsync scale / small", "reference req/s small", "at scale", "scale / small")]
    for scenario in chosen:
        if scenario.favsync_only:
            continue
        fs, fb = rounds.summary(favsync, scenario), rounds.summary(favsync_big, scenario)
        rs, rb = rounds.summary(reference, scenario), rounds.summary(reference_big, scenario)
        rows.append((scenario.name, f"{fs.rps:.0f}", f"{fs.p50:.1f}", f"{fb.rps:.0f}",
                     f"{fb.p50:.1f}", verdict(paired_ratio(fb, fs), SCALE_TARGET, not (fs.bad or fb.bad)),
                     f"{rs.rps:.0f}", f"{rb.rps:.0f}", f"{paired_ratio(rb, rs)[0]:.2f}"))
    print(table(rows))
    print(f"\nthe reference's read (client 7) on the small database:\n{plan(favsync.dsn)}"
          f"\n\nand at 1,000,000 rows:\n{plan(favsync_big.dsn)}")


def compare_workers(args, env: dict, small: str) -> bool:
    """GET and the no-op sync, favsync beside the reference, under each worker model."""
    print(describe(args, "worker models as in the table"))
    fresh = FreshClients()
    chosen = scenarios(fresh)[:2]
    rounds = Rounds(args)
    rows = [("worker model", *COMPARISON_HEADER)]
    fastest = {}  # scenario name -> (favsync req/s, worker model)
    for kind, workers, threads in WORKER_MODELS:
        model = WorkerModel(kind, workers, threads, args.concurrency)
        print(f"{model}:", file=sys.stderr, flush=True)
        favsync = Target(f"favsync, {model}", FAVSYNC, small)
        reference = Target(f"reference, {model}", REFERENCE, small)
        with serving([favsync, reference], env, model):
            warm([favsync, reference], args)
            for scenario in chosen:
                rounds.run(scenario, [favsync, reference])
        rows += comparison_rows(rounds, favsync, reference, chosen, first=(str(model),))
        for scenario in chosen:
            rps = rounds.summary(favsync, scenario).rps
            fastest[scenario.name] = max(fastest.get(scenario.name, (0, "")), (rps, str(model)))
    print(table(rows))
    for name, (rps, model) in fastest.items():
        print(f"favsync's most req/s for {name}: {model} ({rps:.0f} req/s)")
    return report_validity(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1, help="a slice: one app's load in a round")
    parser.add_argument("--warm-up", type=float, default=1, help="per app, before a scenario's rounds")
    # Even: each app is loaded first in half the rounds.
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=16)
    # By default the worker model gunicorn.conf.py serves favsync with in production.
    served = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    parser.add_argument("--workers", type=int, default=served["workers"])
    parser.add_argument("--worker-class", choices=["sync", "gthread"],
                        default=served["worker_class"])
    parser.add_argument("--threads", type=int, default=served["threads"], help="per gthread worker")
    parser.add_argument("--only", action="append", metavar="PART",
                        help="only the scenarios whose name holds PART (repeatable)")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--scale", action="store_true",
                       help="also measure a database holding 1,000,000 favourites")
    modes.add_argument("--compare-workers", action="store_true",
                       help="GET and sync of 10 ids under several gunicorn worker models")
    args = parser.parse_args()
    if args.worker_class == "sync":
        args.threads = 1

    run = uuid.uuid4().hex[:8]
    postgres_since = postgres_started()
    names = [f"favsync_bench_{run}"] + ([f"favsync_bench_{run}_scale"] if args.scale else [])
    smtp_port = free_port()
    sink = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    sink.start()
    try:
        dsns = [create_database(name) for name in names]
        env = {
            **os.environ,
            "FAVSYNC_SECRET_KEY": SECRET,
            "FAVSYNC_MAIL_SERVER": "127.0.0.1",
            "FAVSYNC_MAIL_PORT": str(smtp_port),
            "FAVSYNC_MAGIC_LINK_URL": "https://homes.example/verify?token={token}",
            "FAVSYNC_TRUSTED_HOSTS": "127.0.0.1",
            "FAVSYNC_RATELIMIT_STORAGE_URI": REDIS_URI,
            "FAVSYNC_RATELIMIT_KEY_PREFIX": f"favsync-bench-{run}",
            "FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP": "100000000 per hour",
            "FAVSYNC_RATELIMIT_EMAILS_GLOBAL": "100000000 per hour",
            # Delivery off the request path: magic-link requests queue their emails and
            # publish a Celery task; no worker runs until the delivery measurement.
            "FAVSYNC_CELERY_BROKER_URL": BROKER_URI,
            "FAVSYNC_CELERY_QUEUE": f"favsync-bench-{run}",
        }
        for dsn in dsns:
            subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                           cwd=ROOT, check=True, capture_output=True, env={
                               **env, "FAVSYNC_SQLALCHEMY_DATABASE_URI":
                               dsn.replace("postgresql://", "postgresql+psycopg://", 1)})
            seed(dsn)
        if args.scale:
            seconds = scale(dsns[1])
            print(f"loaded 100,000 clients and 1,000,000 favourites in SQL in {seconds:.1f} s\n")
        if args.compare_workers:
            valid = compare_workers(args, env, dsns[0])
        else:
            valid = bench(args, env, dsns[0], dsns[1] if args.scale else None)
    finally:
        sink.stop()
        drop_queue(f"favsync-bench-{run}")
        for name in names:
            drop_database(name)
    if postgres_started() != postgres_since:
        # Every pooled connection broke: requests failed or waited for the restart.
        print(f"\n!!! INVALID RUN: PostgreSQL restarted during it (at {postgres_started()}) !!!")
        valid = False
    sys.exit(0 if valid else 1)


if __name__ == "__main__":
    main()
