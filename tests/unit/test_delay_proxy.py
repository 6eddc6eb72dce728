"""The delay fault's proxy on loopback: answers held for the delay, requests passed at once."""

from __future__ import annotations

import asyncio

from pytest_probes import _delay_proxy


async def _exchange(delay: float) -> tuple[bytes, float, float]:
    """Client -> proxy pipes -> echo server; return the echo and when it was sent/received."""
    loop = asyncio.get_running_loop()
    received_at: list[float] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        received_at.append(loop.time())
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    app = await asyncio.start_server(echo, "127.0.0.1", 0)
    app_port = app.sockets[0].getsockname()[1]

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        app_r, app_w = await asyncio.open_connection("127.0.0.1", app_port)
        await asyncio.gather(_delay_proxy._pipe(reader, app_w, 0.0),
                             _delay_proxy._pipe(app_r, writer, delay))
        writer.close()

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.sockets[0].getsockname()[1])
    sent = loop.time()
    writer.write(b"ping")
    await writer.drain()
    answer = await reader.read(100)
    answered = loop.time()
    writer.close()
    app.close()
    proxy.close()
    return answer, received_at[0] - sent, answered - sent


def test_answers_come_late_and_requests_at_once() -> None:
    answer, request_took, answer_took = asyncio.run(_exchange(0.4))
    assert answer == b"PING"
    assert request_took < 0.4  # the request was not held
    assert answer_took >= 0.4  # the answer was

