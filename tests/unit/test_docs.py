"""The documentation site (issue 12.1): it builds with mkdocs --strict (a warning fails),
every public name of ``greenbutton`` has an entry in the API reference or the errors page,
and every public name, method and property has a docstring to show there."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import greenbutton
from greenbutton import _errors

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "reference" / "api.md"


def _members(cls: type) -> dict[str, object]:
    """Public attributes a reader sees on ``cls``: its own and those of the private mixins
    and bases it is built from (``_Base``, ``_SyncAPI``), not ``object``'s."""
    found: dict[str, object] = {}
    for base in reversed(cls.__mro__):
        if base is object or not base.__module__.startswith("greenbutton"):
            continue
        if base is not cls and not base.__name__.startswith("_"):
            continue
        found.update({k: v for k, v in vars(base).items() if not k.startswith("_")})
    return found


def _undocumented() -> list[str]:
    missing = []
    for name in greenbutton.__all__:
        obj = getattr(greenbutton, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        for attr, value in _members(obj).items():
            target = value.fget if isinstance(value, property) else value
            target = getattr(target, "__func__", target)
            if callable(target) and not (getattr(target, "__doc__", None) or "").strip():
                missing.append(f"{name}.{attr}")
    return missing


def test_every_public_name_method_and_property_has_a_docstring() -> None:
    assert _undocumented() == []


def test_every_public_name_has_an_entry_in_the_reference() -> None:
    entries = set(re.findall(r"^::: greenbutton\.(\w+)$", API.read_text(), re.M))
    errors = set(_errors.__all__)  # the errors page documents the whole tree
    assert set(greenbutton.__all__) - errors - entries == set()
    assert entries - set(greenbutton.__all__) <= {
        "storage",
        "table",
        "analysis",
        "models",
        "oauth",
        "classic",
    }


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "reference" / "api" / "index.html").read_text()
    assert "usage_points" in api and "exchange_code" in api  # mixin methods are rendered
    cli = (tmp_path / "reference" / "cli" / "index.html").read_text()
    assert "greenbutton export" in cli and "greenbutton sync" in cli
    assert "fonts.googleapis.com" not in (tmp_path / "index.html").read_text()  # no CDN
