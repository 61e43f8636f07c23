"""Connection limits of ``greenbutton serve`` over real sockets on loopback (SECURITY R39, b7):
silent connections, header lines trickling in and a slow POST body are cut off at their
deadlines; more connections than allowed get 503; oversized request heads are refused.

The web app is the real one (against a real simulator) served by uvicorn through
``uvicorn_config`` with small limits, so every test is bounded and quick; the last test
runs the ``serve`` command itself with its options.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.fernet import Fernet

from greenbutton.web import WebConfig, create_app, uvicorn_config
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.worker_harness import free_port

HEAD_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
SLACK = 2.5  # s beyond a deadline before a test calls it missed (loaded CI machines)


@pytest.fixture(scope="module")
def gb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with pytest.MonkeyPatch.context() as m:
        m.setenv("GREENBUTTON_SECRET_KEY", Fernet.generate_key().decode())
        m.delenv("GREENBUTTON_DATABASE_URL", raising=False)
        with start_simulator(tmp_path_factory.mktemp("sim")) as handle:
            yield handle


@contextlib.contextmanager
def serving(gb: SimulatorHandle, tmp: Path, **limits: Any) -> Iterator[tuple[str, int]]:
    """The web app on a free loopback port with ``limits`` (WebConfig fields)."""
    options = {"head_timeout": HEAD_TIMEOUT, "body_timeout": BODY_TIMEOUT, **limits}
    config = WebConfig.for_simulator(
        gb.state_dir, database_url=f"sqlite:///{tmp / 'web.db'}", job_poll_seconds=60, **options
    )
    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = Server(uvicorn_config(app, config, log_config=None))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        yield sock.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def _connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=10)


def _closed_within(socks: list[socket.socket], seconds: float) -> float:
    """Wait until the server closed every socket (EOF or reset); returns the time taken.
    Fails if any is still open after ``seconds``."""
    start = time.monotonic()
    open_ = set(socks)
    while open_:
        left = seconds - (time.monotonic() - start)
        assert left > 0, f"{len(open_)} of {len(socks)} connections still open"
        readable, _, _ = select.select(list(open_), [], [], left)
        for s in readable:
            try:
                data = s.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                open_.discard(s)
    return time.monotonic() - start


def _request(address: tuple[str, int], raw: bytes) -> bytes:
    with _connect(address) as s:
        s.sendall(raw)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def _get(address: tuple[str, int], path: str = "/") -> bytes:
    return _request(
        address, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )


def test_silent_connections_are_closed(gb: SimulatorHandle, tmp_path: Path) -> None:
    """200 connections that never send a byte are closed at the head deadline; the
    server still answers a real request afterwards."""
    with serving(gb, tmp_path) as address:
        socks = [_connect(address) for _ in range(200)]
        try:
            took = _closed_within(socks, HEAD_TIMEOUT + SLACK)
        finally:
            for s in socks:
                s.close()
        assert took >= HEAD_TIMEOUT * 0.8  # the deadline, not an instant refusal
        assert _get(address).startswith(b"HTTP/1.1 200 ")


def test_trickling_header_lines_are_closed(gb: SimulatorHandle, tmp_path: Path) -> None:
    """50 connections each sending a header line every 0.1 s, never ending the head, are
    closed at the head deadline although they keep sending (a slow-loris attack)."""
    with serving(gb, tmp_path) as address:
        socks = [_connect(address) for _ in range(50)]
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        start, open_ = time.monotonic(), set(socks)
        try:
            line = 0
            while open_:
                assert time.monotonic() - start < HEAD_TIMEOUT + SLACK, f"{len(open_)} open"
                line += 1
                for s in list(open_):
                    try:
                        s.sendall(f"X-Slow-{line}: y\r\n".encode())
                        gone = bool(select.select([s], [], [], 0)[0]) and not s.recv(65536)
                    except ConnectionError:
                        gone = True
                    if gone:
                        open_.discard(s)
                time.sleep(0.1)
        finally:
            for s in socks:
                s.close()
        assert line >= 3  # they really were trickling when cut off


def test_slow_body_post_is_closed(gb: SimulatorHandle, tmp_path: Path) -> None:
    """A notification POST whose body trickles (1 byte every 0.1 s of a declared 2,000) is
    answered 408 and closed at the body deadline; nothing is queued."""
    with serving(gb, tmp_path) as address, _connect(address) as s:
        s.sendall(
            b"POST /espi/1_1/Notification HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/xml\r\nContent-Length: 2000\r\n\r\n<"
        )
        start, answer = time.monotonic(), b""
        while True:
            assert time.monotonic() - start < BODY_TIMEOUT + SLACK, "still open"
            if select.select([s], [], [], 0.1)[0]:
                try:
                    chunk = s.recv(65536)
                except ConnectionError:
                    chunk = b""
                if not chunk:
                    break
                answer += chunk
                continue
            with contextlib.suppress(ConnectionError):
                s.sendall(b"x")
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert b"connection: close" in answer.lower()


def test_concurrency_limit_answers_503(gb: SimulatorHandle, tmp_path: Path) -> None:
    """With ``max_connections`` = 4, three connections open (idle) and a fourth request
    gets 503; once they are gone, requests are served again."""
    with serving(gb, tmp_path, max_connections=4, head_timeout=30.0) as address:
        idle = [_connect(address) for _ in range(3)]
        try:
            time.sleep(0.2)  # let the server accept them
            assert _get(address).startswith(b"HTTP/1.1 503 ")
        finally:
            for s in idle:
                s.close()
        deadline = time.monotonic() + SLACK
        while not (answer := _get(address)).startswith(b"HTTP/1.1 200 "):
            assert time.monotonic() < deadline, answer[:80]
            time.sleep(0.05)


def test_request_heads_are_bounded(gb: SimulatorHandle, tmp_path: Path) -> None:
    """A request target over 8 KiB gets 414, more than 100 header fields or a head over
    ``max_head_bytes`` 431 (all at once) or 400 (trickled in, h11's cap); an idle
    kept-alive connection closes after ``keep_alive_timeout``."""
    with serving(gb, tmp_path, keep_alive_timeout=1) as address:
        assert _get(address, "/?" + "a" * 9000).startswith(b"HTTP/1.1 414 ")
        many = "".join(f"X-{i}: y\r\n" for i in range(101))
        raw = f"GET / HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n".encode()
        assert _request(address, raw).startswith(b"HTTP/1.1 431 ")
        huge = f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 40000}\r\n\r\n".encode()
        assert _request(address, huge).startswith(b"HTTP/1.1 431 ")
        with _connect(address) as s:  # the same head in pieces: h11 refuses it unfinished
            with contextlib.suppress(ConnectionError):  # refused before the last piece
                for i in range(0, len(huge) - 4, 4096):
                    s.sendall(huge[i : i + 4096])
                    time.sleep(0.01)
            assert s.recv(65536).startswith(b"HTTP/1.1 400 ")
        with _connect(address) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
            assert _closed_within([s], 1 + SLACK) >= 0.5


def test_serve_command_options(gb: SimulatorHandle, tmp_path: Path) -> None:
    """``greenbutton serve --secure-cookies --max-connections 2 --header-timeout 0.5``:
    the session cookie is ``__Host-`` prefixed and Secure (R51), a silent connection is
    closed at the deadline, and a second connection's request gets 503."""
    port = free_port()
    env = {**os.environ, "GREENBUTTON_SECRET_KEY": Fernet.generate_key().decode()}
    env.pop("GREENBUTTON_DATABASE_URL", None)
    args = [
        sys.executable, "-m", "greenbutton", "serve", "--simulator", str(gb.state_dir),
        "--port", str(port), "--database", f"sqlite:///{tmp_path / 'serve.db'}",
        "--secure-cookies", "--max-connections", "2", "--header-timeout", "0.5",
        "--body-timeout", "0.5",
    ]  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    address = ("127.0.0.1", port)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                answer = _get(address, "/connect")
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        head = answer.decode("latin-1").lower()
        assert "set-cookie: __host-gb_session=" in head and "; secure" in head
        with _connect(address) as silent:
            time.sleep(0.2)
            assert _get(address).startswith(b"HTTP/1.1 503 ")
            assert _closed_within([silent], 0.5 + SLACK) > 0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
