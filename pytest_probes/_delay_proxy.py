"""A TCP proxy that passes answers on late: the ``delay`` fault of :mod:`pytest_probes.outside`.

Run inside a pod's network namespace (``nsenter --net=... python -m pytest_probes._delay_proxy``)
behind an ``iptables -t nat ... -j REDIRECT`` rule for the app's port. Each redirected connection
is forwarded to its original destination (``SO_ORIGINAL_DST``; the proxy's own connection is
locally generated, so it passes the OUTPUT chain and is not redirected again); what the app sends
back is held for the delay, counted from when each chunk arrived, then passed on. Requests go
through at once. So an HTTP or gRPC probe sees its answer ``delay`` late and fails when that is
over its ``timeoutSeconds``; a TCP probe only connects, and the proxy accepts at once.

The stand-in for netem (``tc qdisc ... netem delay``), which this machine's kernel lacks
(no ``sch_netem``). Prints ``listening on PORT`` once ready; runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import sys

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
_CHUNK = 65536


def original_destination(sock: socket.socket) -> tuple[str, int]:
    """The address a REDIRECTed IPv4 connection was sent to (``sockaddr_in``)."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def pump() -> None:
        while chunk := await reader.read(_CHUNK):
            await queue.put((loop.time() + delay, chunk))
        await queue.put((loop.time() + delay, b""))

    pumping = asyncio.create_task(pump())
    try:
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        pumping.cancel()
        if writer.can_write_eof():
            try:
                writer.write_eof()
            except OSError:
                pass


async def _handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                  delay: float) -> None:
    sock = client_w.get_extra_info("socket")
    try:
        host, port = original_destination(sock)
        app_r, app_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    try:
        await asyncio.gather(_pipe(client_r, app_w, 0.0), _pipe(app_r, client_w, delay))
    finally:
        for w in (app_w, client_w):
            w.close()


async def _serve(delay: float) -> None:
    server = await asyncio.start_server(lambda r, w: _handle(r, w, delay), "0.0.0.0", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """Run the proxy: ``--delay SECONDS``."""
    parser = argparse.ArgumentParser(prog="python -m pytest_probes._delay_proxy")
    parser.add_argument("--delay", type=float, required=True, help="seconds to hold answers")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.delay))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
