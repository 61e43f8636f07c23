"""The terminal after a command (issue 12.5): a progress bar on stderr when it is a
terminal, and SIGTERM unwinding like Ctrl-C so the bar gives the cursor back."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from greenbutton.storage import Store, ingest_file
from tests.conftest import FIXTURES

SHOW_CURSOR = b"\x1b[?25h"
HIDE_CURSOR = b"\x1b[?25l"


def _read_all(fd: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENBUTTON_")}
    env["COLUMNS"] = "120"
    return env


def test_export_db_shows_progress_on_a_terminal_and_none_in_a_pipe(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    with Store.open(url, data_dir=tmp_path) as store:
        ingest_file(store, FIXTURES / "gba_demo_hourly_32days.xml")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenbutton", "export", "--db", url, "-o", str(tmp_path / "o.csv")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=_env(),
    )
    os.close(slave)
    seen = _read_all(master, proc)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    assert HIDE_CURSOR in seen and SHOW_CURSOR in seen  # a live bar, and the cursor restored
    assert b"wrote 768 readings" in seen
    piped = subprocess.run(
        [sys.executable, "-m", "greenbutton", "export", "--db", url, "-o", str(tmp_path / "p.csv")],
        capture_output=True,
        env=_env(),
        timeout=60,
        check=True,
    )
    assert piped.stderr == b"wrote 768 readings to " + str(tmp_path / "p.csv").encode() + b"\n"


def test_sigterm_unwinds_and_gives_the_cursor_back(tmp_path: Path) -> None:
    """A SIGTERM while a progress bar is live (what `kill` or a container stop sends): the
    process exits 143 after its context managers ran, and the terminal shows the cursor."""
    script = (
        "import time\n"
        "from rich.console import Console\n"
        "from rich.progress import Progress\n"
        "from greenbutton.cli import _exit_on_sigterm\n"
        "_exit_on_sigterm()\n"
        "with Progress(console=Console(stderr=True), redirect_stdout=False) as bar:\n"
        "    bar.add_task('sync', total=None)\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=_env(),
    )
    os.close(slave)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)  # never hang the suite
    assert ready and proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    seen = _read_all(master, proc, timeout=30)
    os.close(master)
    proc.stdout.close()
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert HIDE_CURSOR in seen
    assert seen.rfind(SHOW_CURSOR) > seen.rfind(HIDE_CURSOR)  # shown again at the end
