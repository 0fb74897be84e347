"""The bench's HTTP load: keep-alive connections in one asyncio loop.

Each connection has one request in flight; requests are encoded before the clock starts. Lean
on purpose: the load generator shares the machine with what it measures, so its own cost per
request is kept small (http.client in threads costs several times as much)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit


class LoadError(RuntimeError):
    """An answer that was not a success."""


def _request(host: str, path: str, key: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _connection(url: str, requests: list[bytes], batch: bool) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        for request in requests:
            writer.write(request)
            status, answer = await _read_answer(reader)
            if status not in (200, 201):
                raise LoadError(f"POST answered {status}: {answer[:300]!r}")
            if batch and b'"ok":false' in answer.replace(b" ", b""):
                raise LoadError(f"a batch item was refused: {answer[:300]!r}")
    finally:
        writer.close()


async def _run(urls: list[str], key: str, bodies: list[bytes], clients: int) -> float:
    path = "/api/v1/events"
    chunks: list[list[bytes]] = [[] for _ in range(clients)]
    for n, body in enumerate(bodies):
        url = urls[n % clients % len(urls)]
        host = urlsplit(url).netloc
        chunks[n % clients].append(_request(host, path, key, body))
    batch = bool(bodies) and bodies[0][:1] == b"["
    began = time.perf_counter()
    await asyncio.gather(
        *(_connection(urls[n % len(urls)], chunk, batch) for n, chunk in enumerate(chunks))
    )
    return time.perf_counter() - began


def post_all(urls: list[str], key: str, bodies: list[bytes], clients: int) -> float:
    """POST every body to /api/v1/events from `clients` keep-alive connections spread over
    the API processes at `urls`; the seconds it took. Any answer other than 200/201 (or an
    item refused in a batch) is an error."""
    try:
        import uvloop

        return uvloop.run(_run(urls, key, bodies, clients))
    except ImportError:
        return asyncio.run(_run(urls, key, bodies, clients))


async def _paced(urls: list[str], key: str, bodies: list[bytes], rate: float, clients: int) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for n, body in enumerate(bodies):
        queue.put_nowait((n, body))

    async def connection(url: str) -> None:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while not queue.empty():
                n, body = queue.get_nowait()
                await asyncio.sleep(max(0.0, began + n / rate - loop.time()))
                writer.write(_request(parts.netloc, "/api/v1/events", key, body))
                status, answer = await _read_answer(reader)
                if status not in (200, 201):
                    raise LoadError(f"POST answered {status}: {answer[:300]!r}")
        finally:
            writer.close()

    await asyncio.gather(*(connection(urls[n % len(urls)]) for n in range(clients)))


def post_paced(urls: list[str], key: str, bodies: list[bytes], rate: float, clients: int) -> None:
    """POST the bodies one per request, the n-th at n / `rate` seconds after the start (from
    `clients` connections, so a slow answer does not hold the next request back)."""
    try:
        import uvloop

        uvloop.run(_paced(urls, key, bodies, rate, clients))
    except ImportError:
        asyncio.run(_paced(urls, key, bodies, rate, clients))
