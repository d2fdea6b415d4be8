"""Load process: keep-alive HTTP/1.1 requests from C connections for S seconds, one request in flight each.

    python -m bench.http_load --url URL [--body FILE] --connections C --seconds S --out FILE
    (credentials in BENCH_USER / BENCH_TOKEN)

GET, or POST with FILE as a JSON body. Raw asyncio streams rather than an HTTP client library, so the generator
costs little CPU next to the server it measures. Writes requests/s, latency percentiles and errors as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop

from bench.credentials import Credentials
from bench.stats import percentile


def build_request(args: argparse.Namespace) -> tuple[str, int, bytes]:
    url = urlsplit(args.url)
    if url.hostname != "127.0.0.1" or url.port is None:
        raise SystemExit("load is generated against 127.0.0.1:<port> only")
    target = url.path + (f"?{url.query}" if url.query else "")
    body = Path(args.body).read_bytes() if args.body else b""
    headers = [f"{name}: {value}" for name, value in Credentials.from_env(os.environ).headers.items()]
    lines = [f"{'POST' if body else 'GET'} {target} HTTP/1.1", f"host: 127.0.0.1:{url.port}", *headers]
    if body:
        lines += ["content-type: application/json", f"content-length: {len(body)}"]
    return url.hostname, url.port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise RuntimeError("response without content-length")
    await reader.readexactly(length)
    return status


async def connection(
    host: str, port: int, request: bytes, until: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            status = await read_response(reader)
            if status != 200:
                errors.append(f"HTTP {status}")
                continue
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data))


async def main(args: argparse.Namespace) -> None:
    host, port, request = build_request(args)
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    until = started + args.seconds
    outcomes = await asyncio.gather(
        *(connection(host, port, request, until, latencies, errors) for _ in range(args.connections)),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    errors += [repr(o) for o in outcomes if isinstance(o, BaseException)]
    result = {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": len(errors),
        "first_errors": errors[:5],
    }
    write_json(Path(args.out), result)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body")
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True)
    return parser.parse_args()


if __name__ == "__main__":
    uvloop.run(main(parse()))
