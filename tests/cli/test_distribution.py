"""The wheel a user installs (issue 12.2): built from this tree, installed with ``[all]`` into
a clean virtualenv outside the source tree, it runs the demo; built without a C compiler's
help (``GREENBUTTON_NO_EXTENSION=1``) it is pure Python and says so in ``--version``.

The dependencies come from ``requirements/runtime.lock`` with their hashes (R70); the wheel
itself is then installed with ``--no-index`` and its ``[all]`` extra, so the extra's metadata
must resolve to what the lock installed, and nothing is fetched that the lock did not pin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _wheel(out: Path, *, pure: bool) -> Path:
    env = {k: v for k, v in os.environ.items() if k != "GREENBUTTON_NO_EXTENSION"}
    if pure:
        env["GREENBUTTON_NO_EXTENSION"] = "1"
    _run(sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", out, cwd=ROOT, env=env)
    (wheel,) = out.glob("greenbutton-*.whl")
    return wheel


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv outside the source tree with the locked runtime dependencies only."""
    home = tmp_path_factory.mktemp("user")
    venv.EnvBuilder(with_pip=True).create(home / "venv")
    python = home / "venv" / "bin" / "python"
    lock = ROOT / "requirements" / "runtime.lock"
    _run(python, "-m", "pip", "install", "-q", "--require-hashes", "-r", lock, cwd=home)
    return home


def _user_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENBUTTON_", "XDG_"))}
    env.update(HOME=str(home), PATH=f"{home / 'venv' / 'bin'}:{env.get('PATH', '')}")
    env.pop("PYTHONPATH", None)
    return env


def test_the_compiled_wheel_runs_the_demo_from_a_clean_venv(
    clean_venv: Path, tmp_path: Path
) -> None:
    wheel = _wheel(tmp_path / "dist", pure=False)
    assert not wheel.name.endswith("-py3-none-any.whl")  # tagged for this platform
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert any(re.fullmatch(r"greenbutton/parse/_cblocks\..*\.so", n) for n in names)
    assert not any(n.endswith((".pyx", ".c")) for n in names)
    python = clean_venv / "venv" / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", "--no-index", f"{wheel}[all]", cwd=clean_venv)
    env = _user_env(clean_venv)
    exe = clean_venv / "venv" / "bin" / "greenbutton"
    version = _run(exe, "--version", cwd=clean_venv, env=env)
    assert "(parser: compiled)" in version
    # The installed package, not this checkout, is what runs.
    where = _run(python, "-c", "import greenbutton; print(greenbutton.__file__)", cwd=clean_venv)
    assert str(clean_venv) in where and str(ROOT) not in where
    out = _run(exe, "demo", "--workdir", clean_venv / "demo", cwd=clean_venv, env=env)
    assert re.search(r"Stored: \d+ account\(s\)", out), out
    assert (clean_venv / "demo" / "usage.png").read_bytes().startswith(b"\x89PNG")


def test_a_wheel_built_without_the_accelerator_is_pure_python_and_says_so(
    clean_venv: Path, tmp_path: Path
) -> None:
    wheel = _wheel(tmp_path / "dist", pure=True)
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as z:
        assert not [n for n in z.namelist() if n.endswith((".so", ".pyd"))]
    python = clean_venv / "venv" / "bin" / "python"
    _run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--force-reinstall",
        "--no-deps",
        wheel,
        cwd=clean_venv,
    )
    env = _user_env(clean_venv)
    exe = clean_venv / "venv" / "bin" / "greenbutton"
    assert "(parser: pure Python)" in _run(exe, "--version", cwd=clean_venv, env=env)
    out = _run(exe, "inspect", FIXTURES / "gba_demo_hourly_32days.xml", cwd=clean_venv, env=env)
    assert "768" in out.replace(",", "")  # the 768 hourly readings, parsed in pure Python
