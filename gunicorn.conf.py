"""gunicorn settings for `make serve`; override with GUNICORN_CMD_ARGS="--bind ... --workers ..."."""
import gc
import logging
import os
import sys
import time

from gunicorn.http import wsgi as gunicorn_http

wsgi_app = "wsgi:app"
bind = "127.0.0.1:8000"
# The worker model, measured by `make bench-workers` on this project's 2-core
# machine (BENCHMARKS.md, "Worker model"): one gthread worker per core with two
# threads each served the most favourites reads and no-op syncs, about 4 % and
# 13 % more than 4 sync workers, 15-30 % more than 2x4 or 4x2 threads. A second
# thread runs while the first waits on PostgreSQL or Redis; more threads or
# processes than that only queue for the same cores (and hold more connections).
# The cost: a slower p99 under saturation (35 ms against 22 ms in that run).
worker_class = "gthread"
workers = os.cpu_count() or 2
threads = 2
timeout = 30  # a worker silent this long is killed and replaced
graceful_timeout = 30  # on SIGTERM, finish requests in flight for up to this long
keepalive = 5
# favsync logs one line per request itself (logger favsync.requests), with a
# request id and the magic-link secret masked; gunicorn's access log would
# print verify URLs, secrets included.
accesslog = None
errorlog = "-"
preload_app = False


_LINE = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


class _LineFormatter(logging.Formatter):
    """logging's Formatter, the text of its time made once a second, not once a line:
    every request logs one, and strftime was a fifth of the line's cost.

    The line format below is put together directly (as logging would, by `%` on
    the record's whole dict): other formats, tracebacks and stacks as logging does.
    """

    _second = (None, "")  # (the second, its text), replaced whole: threads share it

    def format(self, record):
        if (self._fmt != _LINE or record.exc_info or record.exc_text or record.stack_info
                or type(record.process) is not int):  # as %d would print it, or fail
            return super().format(record)
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        return f"{record.asctime} [{record.process}] {record.levelname} {record.name}: {record.message}"

    def formatTime(self, record, datefmt=None):
        if datefmt:  # a "datefmt" given the formatter: as logging formats it
            return super().formatTime(record, datefmt)
        second, text = self._second
        if second != int(record.created):
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return self.default_msec_format % (text, record.msecs)


# Replaces gunicorn's logging dict whole, so it names gunicorn's handlers too.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"()": _LineFormatter, "format": _LINE},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line",
                    "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "line",
                          "stream": "ext://sys.stderr"},
    },
    "root": {"level": "WARNING", "handlers": ["error_console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        # Silenced: it would print verify URLs, magic-link secrets included.
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        "favsync": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}

# What the line format above never prints, its log records need not look up (the
# logging HOWTO's "Optimization"): the caller's file and line (a walk up the stack),
# the thread and the multiprocessing process names. One line per request is logged.
logging._srcfile = None
logging.logThreads = False
logging.logMultiprocessing = False


def post_fork(server, worker):
    """With --preload, drop pooled connections inherited from the master process."""
    wsgi = sys.modules.get("wsgi")
    if wsgi is not None:
        app = wsgi.app
        with app.app_context():
            for engine in app.extensions["favsync"].db.engines.values():
                engine.dispose(close=False)


def post_worker_init(worker):
    """Keep the loaded app out of the garbage collector's full passes.

    Flask, SQLAlchemy, pydantic, Celery and kombu leave some 130,000 objects that live
    as long as the worker; each full collection walked them all (about 0.1 s, with
    every request of the worker waiting). Frozen, a full pass walks what requests made.
    """
    gc.freeze()


# gunicorn announces itself on every answer (Server: gunicorn) and has no setting
# to stop it (benoitc/gunicorn#825). Drop the line from the headers it adds; loaded
# here, in the master, so that every forked worker does the same.
_gunicorn_default_headers = gunicorn_http.Response.default_headers


def _default_headers_without_server(response):
    return [line for line in _gunicorn_default_headers(response) if not line.startswith("Server:")]


gunicorn_http.Response.default_headers = _default_headers_without_server
