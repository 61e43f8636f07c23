"""``greenbutton demo`` (DESIGN 3.2): the whole loop runs, reports, charts, and stops its
servers, also when a step fails."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from greenbutton.cli import _demo, cli

_URL = re.compile(r"https?://127\.0\.0\.1:(\d+)")


def _ports_closed(output: str) -> list[int]:
    """The ports the demo announced; asserts nothing listens on them any more."""
    first = next(line for line in output.splitlines() if "start the simulator" in line)
    ports = [int(p) for p in _URL.findall(first)]
    assert len(ports) == 3, first  # web app, portal, API
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    return ports


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    work = tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENBUTTON_")}
    done = subprocess.run(
        [sys.executable, "-m", "greenbutton", "demo", "--workdir", str(work)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Traceback" not in done.stderr
    stored = re.search(
        r"Stored: (\d+) account\(s\), (\d+) usage point\(s\), ([\d,]+) readings", out
    )
    assert stored is not None, out
    accounts, points, readings = (int(g.replace(",", "")) for g in stored.groups())
    assert accounts >= 1 and points >= 1 and readings > 0
    assert "kWh" in out and "therms" in out
    for step in ("customer login", "code exchange", "async batch", "token refresh"):
        assert re.search(rf"✓ [^\n]*{step}", out), step
    chart = work / "usage.png"
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"Chart: {chart}" in out
    _ports_closed(out)
    assert not (work / "simulator" / "registration.json").exists()  # removed on a clean stop
    assert (work / "secret.key").stat().st_mode & 0o077 == 0


def test_a_failing_step_is_one_error_line_and_stops_the_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(store: object, since: float) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(_demo, "_wait_for_jobs", broken)
    monkeypatch.delenv("GREENBUTTON_SECRET_KEY", raising=False)
    work = tmp_path / "work"
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(work)])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: demo failed: async batch")
    assert "RuntimeError: boom" in result.stderr
    _ports_closed(result.stdout)
    assert not (work / "simulator" / "registration.json").exists()
