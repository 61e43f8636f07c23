"""SECURITY R70: dependency floors enforced; a lock file with hashes; no ``python-jose``.

The floors are SECURITY.md Appendix B's (read from ``shared/SECURITY.md`` beside the
checkout when it is there; :data:`FLOORS` is the copy kept with the tests, and a test keeps
the two equal). Each floor applies to the installed distribution and to its pin in
``requirements/ci.lock``, when the package is used at all ("if used"). No advisory database
is reachable from these machines, so this checks floors, not a live vulnerability feed.
"""

from __future__ import annotations

import re
import sqlite3
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "ci.lock"
SECURITY = ROOT.parent / "shared" / "SECURITY.md"

#: Appendix B: distribution -> lowest allowed version (and why).
FLOORS: dict[str, tuple[str, str]] = {
    "lxml": ("6.1", "CVE-2026-41066: iterparse resolved entities by default"),
    "httpx": ("0.23", "CVE-2021-41945"),
    "authlib": ("1.6.11", "CSRF with cache; JWK injection; DoS"),
    "requests": ("2.32.4", "CVE-2024-35195, CVE-2024-47081"),
    "urllib3": ("2", "urllib3 1.x is end of life"),
    "oauthlib": ("3.2.2", "CVE-2022-36087"),
    "defusedxml": ("0.7.1", "the maintained release line"),
}
#: httpx2 is the maintained httpx continuation (STYLE 3): httpx's floor applies to it too.
ALIASES = {"httpx2": "httpx"}
FORBIDDEN = ("python-jose",)  # R70: CVE-2024-33663 and unmaintained
SQLITE_FLOOR = (3, 24, 0)  # UPSERT


def appendix_b(text: str) -> dict[str, str]:
    """``name>=version`` floors written in backticks in SECURITY.md's Appendix B."""
    start = text.index("## Appendix B")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    return dict(re.findall(r"`([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)`", section))


def lock_pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def installed(name: str) -> Version | None:
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


def _floor_for(name: str) -> tuple[Version, str] | None:
    floor = FLOORS.get(ALIASES.get(name, name))
    return None if floor is None else (Version(floor[0]), floor[1])


def test_floors_are_appendix_b() -> None:
    """The test's copy of the floors is SECURITY.md Appendix B's (when shared/ is beside)."""
    if not SECURITY.is_file():
        pytest.skip(f"{SECURITY} is not beside this checkout; FLOORS is the copy used")
    written = appendix_b(SECURITY.read_text(encoding="utf-8"))
    assert written == {name: floor for name, (floor, _) in FLOORS.items()}


@pytest.mark.parametrize("name", sorted({*FLOORS, *ALIASES}))
def test_installed_versions_meet_the_floors(name: str) -> None:
    """R70: every floored package that is installed is at or above its floor."""
    version = installed(name)
    if version is None:
        return  # "if used": not installed, nothing to hold to a floor
    floor = _floor_for(name)
    assert floor is not None
    assert version >= floor[0], f"{name} {version} is below {floor[0]} ({floor[1]})"


def test_lock_pins_meet_the_floors_and_carry_hashes() -> None:
    """R70: the lock has a hash for every pin, and each floored pin is at or above its floor."""
    text = LOCK.read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n", 2)[2])
    assert len(entries) > 20
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]
    pins = lock_pins()
    for name, version in pins.items():
        floor = _floor_for(name)
        if floor is not None:
            assert version >= floor[0], f"ci.lock pins {name} {version} below {floor[0]}"


def test_lock_covers_pyproject() -> None:
    """Every third-party requirement of the project, its extras, the dev group and the build
    system is pinned in ci.lock (so ``--require-hashes`` can install them all)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    texts = list(project["project"]["dependencies"])
    for extra in project["project"]["optional-dependencies"].values():
        texts += extra
    texts += [t for t in project["dependency-groups"]["dev"] if isinstance(t, str)]
    texts += project["build-system"]["requires"]
    names = {canonicalize_name(Requirement(t).name) for t in texts} - {"greenbutton"}
    missing = sorted(names - set(lock_pins()))
    assert not missing, f"not in {LOCK.name}: {missing}"


def test_forbidden_packages_absent() -> None:
    """R70: no python-jose, installed or locked."""
    pins = lock_pins()
    for name in FORBIDDEN:
        assert installed(name) is None, f"{name} is installed"
        assert canonicalize_name(name) not in pins, f"{name} is in {LOCK.name}"


def test_sqlite_supports_upsert() -> None:
    """Appendix B: SQLite >= 3.24 (UPSERT) under the storage layer."""
    assert sqlite3.sqlite_version_info >= SQLITE_FLOOR, sqlite3.sqlite_version


def test_floor_check_catches_a_low_version() -> None:
    """The comparison is on versions, not strings: 6.0.9 < 6.1 <= 6.10 (not vacuous)."""
    floor = _floor_for("lxml")
    assert floor is not None
    assert Version("6.0.9") < floor[0] <= Version("6.10") and Version("10.0") >= floor[0]
    assert _floor_for("httpx2") == _floor_for("httpx")
    assert appendix_b("## Appendix B\n`lxml>=6.1` · `x>=2` if used\n## C\n`y>=1`") == {
        "lxml": "6.1",
        "x": "2",
    }
