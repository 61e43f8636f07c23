"""``greenbutton --log-format json simulator``: the simulator's uvicorn servers log through
the CLI's one handler, as ``serve``'s do, so a real process writes only JSON lines to
stderr (its startup records, the access log with the request's fields and without its
query, ``Simulator stopped.``), never a secret from a query (SECURITY R49)."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

SECRET = "C0DE-7f3a9b"  # noqa: S105 - a fake authorization code, to look for in stderr


def _run_until_ready(argv: list[str], state_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenbutton", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (state_dir / "registration.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.communicate())
        time.sleep(0.05)
    return proc


def _stop(proc: subprocess.Popen[str]) -> list[dict[str, object]]:
    """Ctrl-C, then every stderr line as the JSON object it must be."""
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert SECRET not in err
    lines = err.splitlines()
    assert lines, "nothing was logged"
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    for entry in entries:
        assert isinstance(entry, dict)
        assert {"ts", "level", "logger", "message"} <= entry.keys()
    return entries


def test_json_access_log_of_a_real_simulator(tmp_path: Path) -> None:
    state = tmp_path / "sim"
    proc = _run_until_ready(
        ["--log-format", "json", "simulator", "--state-dir", str(state), "--access-log"], state
    )
    try:
        reg = json.loads((state / "registration.json").read_text())
        portal = reg["authorize_url"].split("/", 3)
        origin = "/".join(portal[:3])
        ctx = ssl.create_default_context(cafile=reg["ca_cert"])
        with httpx2.Client(verify=ctx) as http:
            answer = http.get(f"{origin}/nowhere", params={"code": SECRET, "state": "s"})
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    entries = _stop(proc)
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert len(access) == 1
    assert access[0]["method"] == "GET" and access[0]["path"] == "/nowhere"
    assert access[0]["status"] == answer.status_code
    assert access[0]["level"] == "info"  # --access-log brought the level down to info
    assert any(e["logger"] == "uvicorn.error" for e in entries)  # startup and shutdown
    assert entries[-1]["logger"] == "greenbutton.cli"
    assert entries[-1]["message"] == "Simulator stopped."


@pytest.mark.parametrize(
    "options",
    [
        ["--log-format", "json", "--log-level", "info", "simulator"],
        ["simulator", "--log-format", "json", "--log-level", "info"],
    ],
    ids=["group-options", "command-options"],
)
def test_json_lines_from_the_group_or_the_command_options(
    tmp_path: Path, options: list[str]
) -> None:
    """Without --access-log: uvicorn's own records at --log-level info, and no access log."""
    state = tmp_path / "sim"
    entries = _stop(_run_until_ready([*options, "--state-dir", str(state)], state))
    loggers = {e["logger"] for e in entries}
    assert "uvicorn.error" in loggers and "uvicorn.access" not in loggers
    assert any(e["message"] == "Application startup complete." for e in entries)
