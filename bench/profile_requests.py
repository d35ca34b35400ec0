"""Where a favsync request spends its time: cProfile over in-process requests on PostgreSQL.

Usage: python bench/profile_requests.py [list|sync10|sync500|add500|magic] [requests]

sync10 and sync500 re-send ids the client holds (no-ops); add500 sends 500 new
ids, each time to a fresh client that holds none.
"""
import cProfile
import os
import pstats
import sys
import uuid

import psycopg

sys.path.insert(0, os.path.dirname(__file__))
from run import (  # noqa: E402
    ADMIN_DSN, API, BIG_CLIENTS, BROKER_URI, HELD, NEW, REDIS_URI, SECRET, FreshClients, bearer, seed,
)

from favsync import create_app  # noqa: E402


def main() -> None:
    scenario = sys.argv[1] if len(sys.argv) > 1 else "list"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    name = f"favsync_profile_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    try:
        app = create_app({
            "FAVSYNC_SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://"),
            "FAVSYNC_SECRET_KEY": SECRET, "FAVSYNC_MAIL_SERVER": "127.0.0.1",
            "FAVSYNC_MAGIC_LINK_URL": "https://homes.example/verify?token={token}",
            # As in `make bench`: limits in Redis, delivery by Celery (no worker: queued only).
            "FAVSYNC_RATELIMIT_STORAGE_URI": REDIS_URI,
            "FAVSYNC_RATELIMIT_KEY_PREFIX": f"favsync-profile-{name}",
            "FAVSYNC_RATELIMIT_MAGIC_LINK_PER_IP": "100000000 per hour",
            "FAVSYNC_RATELIMIT_EMAILS_GLOBAL": "100000000 per hour",
            "FAVSYNC_CELERY_BROKER_URL": BROKER_URI,
            "FAVSYNC_CELERY_QUEUE": name,
            "FAVSYNC_TRUSTED_HOSTS": "localhost",
        })
        with app.app_context():
            import flask_migrate

            from favsync.database import MIGRATIONS_DIRECTORY
            flask_migrate.upgrade(directory=MIGRATIONS_DIRECTORY)
        seed(dsn)
        client = app.test_client()
        sync = f"{API}/sync"
        fresh = iter(FreshClients().take(dsn, count + 200) if scenario == "add500" else ())
        calls = {
            "list": lambda c: client.get(API, headers=bearer(c)),
            "sync10": lambda c: client.post(sync, headers=bearer(c), json={"favorites": HELD[:10]}),
            "sync500": lambda c: client.post(sync, headers=bearer(BIG_CLIENTS[c % len(BIG_CLIENTS)]),
                                             json={"favorites": HELD}),
            "add500": lambda c: client.post(sync, headers=bearer(next(fresh)), json={"favorites": NEW}),
            "magic": lambda c: client.post(f"{API}/magic-link",
                                           json={"email": f"{uuid.uuid4().hex}@example.com"}),
        }
        call = calls[scenario]
        for c in range(1, 201):
            call(c)  # warm up caches
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(count):
            call(1 + i % 200)
        profiler.disable()
        stats = pstats.Stats(profiler)
        print(f"{scenario}: {stats.total_tt / count * 1000:.2f} ms of CPU per request in process")
        stats.sort_stats(os.environ.get("SORT", "cumulative")).print_stats(28)
        with app.app_context():
            app.extensions["favsync"].db.engine.dispose()
    finally:
        from run import drop_queue

        drop_queue(name)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
