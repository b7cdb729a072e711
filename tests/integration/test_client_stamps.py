"""The client's arrival times are the kernel's: a late event loop does not move them.

A server thread answers 20 ms after the request; the client's event loop is
blocked for 100 ms from the moment it sent. The response is read ~80 ms after
it arrived, yet its ``t_last_byte`` must be within 5 ms of the server's write —
and, with user-space stamps forced (the declared fallback), it is not.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from loadgate.client.http1 import ConnectionPool

MS = 1_000_000
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
pytestmark = pytest.mark.timeout(30)


class _LateServer:
    """One connection, one answer, written 20 ms after the request arrived."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.t_write = 0
        self.got_request = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(4096)
            self.got_request.set()
            time.sleep(0.02)
            self.t_write = time.monotonic_ns()
            conn.sendall(ANSWER)
            time.sleep(0.5)


@pytest.mark.parametrize("force_user", [False, True])
async def test_a_late_reader_records_the_arrival_not_the_read(force_user: bool) -> None:
    server = _LateServer()
    pool = ConnectionPool(
        f"http://127.0.0.1:{server.port}",
        limit=1,
        connect_timeout_s=5,
        force_user_stamps=force_user,
    )
    try:
        request = asyncio.ensure_future(pool.request("GET", "/", timeout_s=10))
        await asyncio.to_thread(server.got_request.wait, 10)
        time.sleep(0.3)  # the loop is busy elsewhere while the answer arrives  # noqa: ASYNC251
        resp = await request
        read_late_by = time.monotonic_ns() - server.t_write
    finally:
        await pool.close()
        server.sock.close()
    assert resp.status == 200 and resp.body == b"hello"
    assert read_late_by > 200 * MS  # the loop really read it late
    arrival_error = resp.t_last_byte - server.t_write
    if force_user:
        assert pool.stamps == "user"
        assert arrival_error > 200 * MS  # user-space stamps carry the lateness
    else:
        assert pool.stamps == "kernel"
        # Lopsided: the server thread may be descheduled between its clock read and send.
        assert -1 * MS <= arrival_error < 100 * MS, arrival_error
