"""Drive HTTP load at servers, one at a time in alternating slices, and report JSON.

Usage: python bench/load.py SPEC.json

SPEC: targets (each a port, its bodies (JSON values) and its requests, each
[method, path, headers, index into bodies or null]), concurrency (connections
per target), warm_up (seconds of load each target gets first, not reported),
slice (seconds) and order (the targets' indexes, one per slice).

Slice after slice, all connections load the one target the order names; the
next slice begins when the last answer of this one is in, so no two targets
are ever loaded at once. Each target's requests are taken in turn, cycling
through its list: `sent` says how many were, so the caller can tell whether
it wrapped around.

Why slices: on this shared virtual machine the CPU's speed drifts by a fifth
within seconds (BENCHMARKS.md, "How to reproduce"). Back-to-back slices of a
second each see nearly the same machine; measurements a few seconds apart,
with a process start and a warm-up between them, did not.

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


def encode_head(method: str, path: str, headers: dict, payload: bytes | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
             f"Content-Length: {0 if payload is None else len(payload)}"]
    if payload is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Target:
    """One server: its connections (kept across slices) and its requests, taken in turn."""

    def __init__(self, spec: dict, concurrency: int) -> None:
        # Bodies encoded once and shared: an adding sync's 500 ids, for thousands of requests.
        payloads = [json.dumps(body).encode() for body in spec.get("bodies", [])]
        self.requests = [
            (encode_head(method, path, headers, None if body is None else payloads[body]),
             b"" if body is None else payloads[body])
            for method, path, headers, body in spec["requests"]
        ]
        self.connections = [Connection(spec["port"]) for _ in range(concurrency)]
        self.sent = 0

    async def drive(self, seconds: float) -> dict:
        """Load this target with all its connections for `seconds`; what it answered."""
        started = time.perf_counter()
        deadline = started + seconds
        latencies, statuses = [], {}

        async def user(connection: Connection) -> None:
            while (began := time.perf_counter()) < deadline:
                head, body = self.requests[self.sent % len(self.requests)]
                self.sent += 1
                try:
                    status = await connection.request(head + body)
                except (OSError, asyncio.IncompleteReadError):
                    connection.close()
                    status = 0
                latencies.append(round(1000 * (time.perf_counter() - began), 3))
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(user(connection) for connection in self.connections))
        return {
            "elapsed": time.perf_counter() - started,  # until its last answer
            "ok": sum(n for status, n in statuses.items() if 200 <= status < 300),
            "statuses": statuses,
            "latencies_ms": latencies,
        }

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


async def run(spec: dict) -> dict:
    targets = [Target(target, spec["concurrency"]) for target in spec["targets"]]
    for target in targets:
        if spec.get("warm_up"):
            await target.drive(spec["warm_up"])
    slices = []
    for index in spec["order"]:
        slices.append({"target": index, **await targets[index].drive(spec["slice"])})
    for target in targets:
        target.close()
    return {
        "slices": slices,
        "sent": [target.sent for target in targets],
        "listed": [len(target.requests) for target in targets],
        "connections": Connection.opened,
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as spec_file:
        print(json.dumps(asyncio.run(run(json.load(spec_file)))))
