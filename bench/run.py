"""`make bench`: favsync against the bare-stack reference, same gunicorn settings, same data.

Creates a fresh PostgreSQL database, seeds it in SQL, starts a local SMTP sink,
then for favsync (wsgi:app) and the reference (bench/bare_app.py) in turn starts
gunicorn with gunicorn.conf.py and drives each scenario from bench/load.py in a
separate process. With --scale it then adds 100,000 clients holding 1,000,000
favourites and measures favsync again. The database is dropped at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import jwt
import psycopg
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URI = os.environ.get("BENCH_REDIS_URI", "redis://127.0.0.1:6379/0")
BROKER_URI = os.environ.get("BENCH_BROKER_URI", "amqp://guest:guest@127.0.0.1:5672//")
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
API = "/api/v1/favorites"
LIST_CLIENTS = range(1, 201)  # 50 favourites each
BIG_CLIENTS = range(201, 301)  # grow to 500 favourites in the warm-up


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


def scenarios(run: str) -> dict[str, dict]:
    small = [f"L-{n}" for n in range(1, 51)]
    return {
        "GET favorites (50 held)": {
            "requests": [["GET", API, bearer(c), None] for c in LIST_CLIENTS]},
        "POST sync, 10 ids": {
            "requests": [["POST", f"{API}/sync", bearer(c), {"favorites": small[:10]}]
                         for c in LIST_CLIENTS]},
        "POST sync, 500 ids": {
            "warm_up": True,
            "requests": [["POST", f"{API}/sync", bearer(c),
                          {"favorites": small + [f"N-{n}" for n in range(450)]}]
                         for c in BIG_CLIENTS]},
        "POST magic-link": {
            "requests": [["POST", f"{API}/magic-link", {}, {"email": f"{run}-{n}@example.com"}]
                         for n in range(60_000)]},
    }


def seed(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("INSERT INTO favsync_clients (brokerage_id, email)"
                   " SELECT 1, 'bench' || g || '@example.com' FROM generate_series(1, 300) g")
        db.execute("INSERT INTO favsync_favorites (client_id, listing_id)"
                   " SELECT c, 'L-' || f FROM generate_series(1, 300) c, generate_series(1, 50) f")
        # One signed-in session per client: the `sid` of the bench's tokens.
        db.execute("INSERT INTO favsync_refresh_tokens"
                   " (client_id, family, token, created_at, expires_at, family_started_at)"
                   " SELECT g, 'bench-' || g, encode(sha256(('bench-' || g)::bytea), 'hex'),"
                   " now(), now() + interval '1 day', now() FROM generate_series(1, 300) g")
        db.execute("ANALYZE")


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
    with psycopg.connect(dsn) as db:
        rows = db.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)"
                          " SELECT listing_id FROM favsync_favorites WHERE client_id = 7 ORDER BY id")
        return "\n".join(row[0] for row in rows)


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


def row_count(dsn: str) -> int:
    with psycopg.connect(dsn) as db:
        return db.execute("SELECT count(*) FROM favsync_favorites").fetchone()[0]


@contextlib.contextmanager
def gunicorn(app: str, env: dict, workers: int):
    port = free_port()
    log = tempfile.TemporaryFile()
    args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", str(workers),
            "--bind", f"127.0.0.1:{port}", "--pythonpath", "bench", app]
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def load(port: int, scenario: dict, seconds: float, concurrency: int) -> dict:
    spec = {"port": port, "concurrency": concurrency, "seconds": seconds,
            "requests": scenario["requests"]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec_file:
        json.dump(spec, spec_file)
    try:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), spec_file.name],
                             check=True, capture_output=True, text=True)
    finally:
        os.unlink(spec_file.name)
    return json.loads(out.stdout)


def measure(app, env, names, scenario_set, args) -> dict:
    results = {}
    with gunicorn(app, env, args.workers) as port:
        for name in names:
            scenario = scenario_set[name]
            if scenario.get("warm_up"):  # every client reaches its steady state first
                load(port, {"requests": scenario["requests"]}, 3, args.concurrency)
            load(port, scenario, 1, args.concurrency)
            results[name] = load(port, scenario, args.seconds, args.concurrency)
    return results


def table(rows: list[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def fmt(result: dict) -> tuple:
    bad = result["requests"] - result["ok"]
    return (f"{result['rps']:.0f}", f"{result['p50_ms']:.1f}", f"{result['p99_ms']:.1f}",
            str(bad) if bad else "0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--scale", action="store_true", help="also measure at 1,000,000 favourites")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    name = f"favsync_bench_{run}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    smtp_port = free_port()
    sink = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    sink.start()
    try:
        env = {
            **os.environ,
            "FAVSYNC_SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
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
            "BENCH_DSN": dsn,
        }
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        seed(dsn)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, PostgreSQL and Redis on 127.0.0.1; gunicorn "
              f"{args.workers} sync workers; load: {args.concurrency} connections for "
              f"{args.seconds:g} s per scenario from a separate process\n")
        names = list(scenarios(run))
        favsync = measure("wsgi:app", env, names, scenarios(run + "f"), args)
        bare = measure("bare_app:app", env, names, scenarios(run + "b"), args)
        rows = [("scenario", "favsync req/s", "p50 ms", "p99 ms", "non-2xx",
                 "bare req/s", "p50 ms", "p99 ms", "non-2xx", "favsync / bare")]
        for scenario in names:
            f, b = favsync[scenario], bare[scenario]
            rows.append((scenario, *fmt(f), *fmt(b), f"{f['rps'] / b['rps']:.2f}"))
        print(table(rows))
        ratio = favsync["POST magic-link"]["p50_ms"] / favsync["GET favorites (50 held)"]["p50_ms"]
        print(f"\nfavsync POST magic-link p50 / GET favorites p50: {ratio:.2f} (target: at most 1.5)")
        sent, seconds = delivery_throughput(env, dsn)
        print(f"one Celery worker (one process) delivered {sent:,} queued emails to the SMTP sink "
              f"in {seconds:.1f} s: {sent / seconds:.0f} emails/s")

        if args.scale:
            small_rows = row_count(dsn)
            small_plan = plan(dsn)
            seconds = scale(dsn)
            print(f"\nloaded 100,000 clients and 1,000,000 favourites in SQL in {seconds:.1f} s; "
                  f"favsync_favorites: {small_rows:,} -> {row_count(dsn):,} rows\n")
            scaled = measure("wsgi:app", env, names[:3], scenarios(run + "s"), args)
            rows = [("favsync scenario", f"req/s at {small_rows:,} rows", "p50 ms",
                     f"req/s at {row_count(dsn):,} rows", "p50 ms", "ratio")]
            for scenario in names[:3]:
                f, s = favsync[scenario], scaled[scenario]
                rows.append((scenario, f"{f['rps']:.0f}", f"{f['p50_ms']:.1f}",
                             f"{s['rps']:.0f}", f"{s['p50_ms']:.1f}", f"{s['rps'] / f['rps']:.2f}"))
            print(table(rows))
            print(f"\nthe list query before:\n{small_plan}\n\nand at 1,000,000 rows:\n{plan(dsn)}")
    finally:
        sink.stop()
        drop_queue(f"favsync-bench-{run}")
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
