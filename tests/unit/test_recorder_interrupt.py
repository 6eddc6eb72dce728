"""Stopping a recorder's stream from another thread, on a real urllib3 connection over loopback.

``Recorder.stop`` interrupts streams that other threads are reading. It shuts the socket down for
reading and leaves closing to the reading thread: closing from the stopping thread too raced with
the reader handing the connection back to the shared pool (see ``recorder._interrupt``). Here a
loopback server sends one line and then nothing, as a watch of a quiet namespace or the log of a
frozen container does.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
import urllib3

from pytest_probes.recorder import _close, _interrupt, _lines


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/once":
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"6\r\nfirst\n\r\n")
        self.wfile.flush()
        self.server.release.wait(30)  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    httpd.release = threading.Event()  # type: ignore[attr-defined]
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def test_an_interrupted_quiet_stream_ends_its_reader_and_the_pool_serves_again(
    server: http.server.ThreadingHTTPServer,
) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.server_address[1], maxsize=1)
    resp = pool.urlopen("GET", "/stream", preload_content=False,
                        timeout=urllib3.Timeout(connect=5, read=60))
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        try:
            seen.extend(_lines(resp))
        except Exception:
            pass  # a shut-down chunked stream ends with IncompleteRead
        finally:
            _close(resp)
            done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while not seen:
        assert reader.is_alive() or seen
        done.wait(0.01)
    _interrupt(resp)
    assert done.wait(5), "the reader still blocks after the interrupt"
    assert seen == ["first"]
    again = pool.urlopen("GET", "/once", timeout=5)
    assert again.status == 200 and again.data == b"ok\n"


def test_interrupting_a_stream_whose_connection_went_back_to_the_pool_leaves_it_alone(
    server: http.server.ThreadingHTTPServer,
) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.server_address[1], maxsize=1)
    resp = pool.urlopen("GET", "/once", preload_content=False, timeout=5)
    assert resp.read() == b"ok\n"  # read to its end: the connection is back in the pool
    assert resp.connection is None
    _interrupt(resp)  # must not shut down the pooled socket another request will use
    again = pool.urlopen("GET", "/once", timeout=5)
    assert again.status == 200 and again.data == b"ok\n"
