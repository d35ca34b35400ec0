"""Drive HTTP load at one server from this separate process and report JSON.

Usage: python bench/load.py SPEC.json

SPEC: port, concurrency (connections), warm_up and seconds (the warm-up's
requests are sent but not reported), bodies (JSON values), and requests, each
[method, path, headers, index into bodies or null]. The requests are taken in
turn, cycling through the list: `sent` says how many were, so the caller can
tell whether it wrapped around.

HTTP/1.1 keep-alive: a connection is reused unless the answer says
`Connection: close` (gunicorn's sync workers do, every time; gthread workers
keep it open), so each answer is read to exactly its Content-Length.
"""
import asyncio
import json
import sys
import time


class Connection:
    """One client connection, reopened when the server closes it."""

    opened = 0  # by all connections: how often keep-alive did not hold

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> int:
        """Send one request and read its whole answer; return the status."""
        if self.writer is not None:
            status = await self._exchange(raw)
            if status is not None:
                return status
            # The server closed the kept-alive connection before answering
            # (its keep-alive timeout): nothing was processed, so send again.
        await self._open()
        status = await self._exchange(raw)
        if status is None:
            raise ConnectionError("the server closed the connection without answering")
        return status

    async def _open(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        Connection.opened += 1

    async def _exchange(self, raw: bytes) -> int | None:
        try:
            self.writer.write(raw)
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            return None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        else:  # no length: the body runs to the end of the connection
            await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection") == "close":
            self.close()
        return int(status_line.split()[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def encode(method: str, path: str, headers: dict, body) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def run(spec: dict) -> dict:
    bodies = spec.get("bodies", [])
    requests = [encode(method, path, headers, None if body is None else bodies[body])
                for method, path, headers, body in spec["requests"]]
    started = time.perf_counter()
    measured_from = started + spec.get("warm_up", 0)
    deadline = measured_from + spec["seconds"]
    latencies, statuses, sent = [], {}, 0

    async def user():
        nonlocal sent
        connection = Connection(spec["port"])
        while (began := time.perf_counter()) < deadline:
            raw = requests[sent % len(requests)]
            sent += 1
            try:
                status = await connection.request(raw)
            except (OSError, asyncio.IncompleteReadError):
                connection.close()
                status = 0
            if began >= measured_from:
                latencies.append(round(1000 * (time.perf_counter() - began), 3))
                statuses[status] = statuses.get(status, 0) + 1
        connection.close()

    await asyncio.gather(*(user() for _ in range(spec["concurrency"])))
    return {
        "elapsed": time.perf_counter() - measured_from,
        "ok": sum(n for status, n in statuses.items() if 200 <= status < 300),
        "statuses": statuses,
        "latencies_ms": latencies,
        "sent": sent,
        "listed": len(requests),
        "connections": Connection.opened,
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as spec_file:
        print(json.dumps(asyncio.run(run(json.load(spec_file)))))
