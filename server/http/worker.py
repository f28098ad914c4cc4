"""gunicorn's threaded worker, reading each request's head without holding a thread while it arrives.

gunicorn 27's `gthread` worker hands a connection to one of its few threads as soon as it has data, and
that thread reads the rest of the head (request line and headers) with blocking reads and no time limit:
twelve connections that sent a header line every two seconds held every thread of two workers, and the
server answered nothing more (measured). Here a thread takes what has arrived without waiting, keeps it
in the connection's parser buffer and hands the connection back to the worker's poller until more
comes, as an event-driven server does; only a complete head (or one already too large, which the parser
refuses) is parsed and served. The head must be complete within HEAD_TIMEOUT seconds (a setting,
`MEDCODE_HEAD_TIMEOUT`) of its first byte, else the client gets a 408 and the connection closes; a
connection silent for the keep-alive time is closed by gunicorn. The body has its own limit
(server/http/body.py).
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import _DEFER, STOP_KEEPALIVE_LINGER, ThreadWorker

from ..settings import DEFAULTS, from_environment

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
#: buffered bytes past which a head without its end is handed to the parser, which refuses it as too large
#: (gunicorn's limits: a request line of 4,094 bytes, 100 header fields of 8,190)
HEAD_MOST = 1 << 20
#: seconds a thread waits for a connection's first bytes before handing it to the poller (gunicorn waits 5 s):
#: a client sends its request just after it connects, and a connection handed over queues for a thread again
#: (with 5 ms, CI's soak twice saw a runaway answered 1.6 s past its limit; not reproduced outside CI)
FIRST_WAIT = 1.0


def _head_end(buffered: bytes) -> bool:
    return b"\r\n\r\n" in buffered or b"\n\n" in buffered or len(buffered) > HEAD_MOST


class HeadTimeoutWorker(ThreadWorker):
    """`gthread` whose threads never wait for a head: they parse complete ones and serve them."""

    def init_process(self) -> None:
        self.head_timeout = float(from_environment().get("HEAD_TIMEOUT", DEFAULTS["HEAD_TIMEOUT"]))
        super().init_process()

    def handle(self, conn: Any) -> Any:
        try:
            ready = self._gather_head(conn)
        except OSError:
            return False  # reset by the client: closed
        if ready is None:
            return _DEFER  # back to the poller until more of the head comes
        return super().handle(conn) if ready else False

    def _gather_head(self, conn: Any) -> bool | None:
        """Whether the head is complete (True: parse it), late (False: 408 sent), or to wait for (None)."""
        conn.init()  # the parser and its buffer (once per connection; no read)
        buffer = conn.parser.unreader.buf
        if _head_end(buffer.getvalue()):
            conn.head_started = None
            return True
        data = _available(conn, FIRST_WAIT if getattr(conn, "head_started", None) is None else 0.0)
        if data == b"":
            return True  # the client closed: the parser says so
        now = time.monotonic()
        if data:
            if getattr(conn, "head_started", None) is None:
                conn.head_started = now
            buffer.seek(0, os.SEEK_END)
            buffer.write(data)
            if _head_end(buffer.getvalue()):
                conn.head_started = None
                return True
        started = getattr(conn, "head_started", None)
        if started is not None and now - started > self.head_timeout:
            _refuse(conn)
            return False
        return None

    def finish_request(self, conn: Any, fs: Any) -> None:
        """As gunicorn's, but a refused connection is closed at once (on the worker's main thread: gunicorn's
        lingering close waits up to 2 s), and a connection waiting for its head when the worker stops keeps
        waiting on the poller for the stopping worker's linger (gunicorn, seeing bytes in its buffer, would
        hand it straight back to a thread, again and again, until the worker exits)."""
        if getattr(conn, "refused", False):
            self.nr_conns -= 1
            util.close(conn.sock)
            return
        if not self.alive and not fs.cancelled() and fs.exception() is None and fs.result() is _DEFER:
            try:
                conn.sock.setblocking(False)
                conn.timeout = time.monotonic() + STOP_KEEPALIVE_LINGER
                self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))
                self.pending_conns.append(conn)
            except (OSError, ValueError, KeyError):
                self.nr_conns -= 1
                util.close(conn.sock)
            return
        super().finish_request(conn, fs)


def _available(conn: Any, wait: float) -> bytes | None:
    """What the client has sent (b"" once it has closed; None: nothing yet), waiting at most `wait` seconds."""
    if wait and not conn.wait_for_data(wait):  # (gunicorn's own wait, a selector on the socket)
        return None
    conn.sock.setblocking(False)
    try:
        return conn.sock.recv(1 << 16)
    except BlockingIOError:
        return None
    finally:
        conn.sock.setblocking(True)


def _refuse(conn: Any) -> None:
    """The 408, then the end of the answer (FIN) and what the client had sent read and dropped, so that closing
    does not reset the connection before the client has read the 408; all in the connection's thread."""
    conn.refused = True
    try:
        conn.sock.settimeout(1.0)
        conn.sock.sendall(TIMED_OUT)
        conn.sock.shutdown(socket.SHUT_WR)
        conn.sock.setblocking(False)
        for _ in range(16):
            if not conn.sock.recv(1 << 16):
                break
    except OSError:  # nothing more to read (BlockingIOError), or the client is gone
        pass
