"""Drive HTTP load at one server from this separate process and report JSON.

Usage: python bench/load.py SPEC.json  (port, concurrency, seconds, requests)
Each request is [method, path, headers, body]; the list is cycled through.
gunicorn's sync workers close each connection, so every request opens one.
"""
import asyncio
import json
import sys
import time


async def one(port: int, raw: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()  # to the end: the server closes the connection
    writer.close()
    return int(status_line.split()[1])


def encode(method: str, path: str, headers: dict, body) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             f"Content-Length: {len(payload)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def run(spec: dict) -> dict:
    requests = [encode(*r) for r in spec["requests"]]
    deadline = time.perf_counter() + spec["seconds"]
    latencies, statuses, next_index = [], {}, 0

    async def worker():
        nonlocal next_index
        while time.perf_counter() < deadline:
            raw = requests[next_index % len(requests)]
            next_index += 1
            started = time.perf_counter()
            try:
                status = await one(spec["port"], raw)
            except OSError:
                status = 0
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    elapsed = time.perf_counter() - began
    latencies.sort()
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "requests": len(latencies),
        "ok": ok,
        "statuses": statuses,
        "rps": ok / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as spec_file:
        print(json.dumps(asyncio.run(run(json.load(spec_file)))))
