"""Shared pieces of the tests that run real ``greenbutton worker`` processes (and other
servers on a port): a free port, a worker playing one machine, and waiting for it to end.

Each worker gets its own ``GREENBUTTON_HOST_ID`` and rate-limit folder, as a separate
machine would, so what they share can only be what the database holds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.simulator_harness import SimulatorHandle


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_worker(
    gb: SimulatorHandle, url: str, tmp_path: Path, host: str, *extra: str
) -> subprocess.Popen[str]:
    """``greenbutton worker --database url --simulator ...`` as machine ``host``."""
    env = {**os.environ, "GREENBUTTON_HOST_ID": host,
           "GREENBUTTON_RATE_DIR": str(tmp_path / f"rate-{host}")}  # fmt: skip
    command = [sys.executable, "-m", "greenbutton", "worker", "--database", url,
               "--simulator", str(gb.state_dir), *extra]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> str:
    """The process's output once it exited 0; the test fails (with the output) otherwise."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"worker did not finish:\n{out}")
    assert proc.returncode == 0, out
    return out
