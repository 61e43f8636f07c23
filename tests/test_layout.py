"""The architecture's one rule (DESIGN 2): ``cli/``, ``web/`` and ``simulator/`` build on the
SDK; the SDK (everything else in the package) never imports them, nor the server stack.

A static check over the source: every ``import`` and ``from ... import`` of every module
outside the three front ends, resolved to an absolute module name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import greenbutton

PACKAGE = Path(greenbutton.__file__).parent
FRONT_ENDS = ("cli", "web", "simulator")
#: Server-only helpers: imported by web/ and simulator/, never by the SDK.
SERVER_ONLY = {"greenbutton._asgi_tls"}
#: ``python -m greenbutton`` is the CLI's entry point, not part of the SDK.
ENTRY_POINTS = {"greenbutton.__main__"}
SERVER_STACK = ("uvicorn", "starlette", "jinja2")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _sdk_modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.relative_to(PACKAGE).parts[0] not in FRONT_ENDS
        and _module(p) not in SERVER_ONLY | ENTRY_POINTS
    ]


def test_the_sdk_never_imports_the_front_ends_or_the_server_stack() -> None:
    modules = _sdk_modules()
    assert len(modules) > 30  # the walk found the package
    bad = {
        _module(p): sorted(
            name
            for name in _imports(p)
            if name in SERVER_ONLY
            or any(name.startswith(f"greenbutton.{front}") for front in FRONT_ENDS)
            or name.split(".")[0] in SERVER_STACK
        )
        for p in modules
    }
    assert {m: names for m, names in bad.items() if names} == {}


def test_the_check_sees_relative_imports() -> None:
    """The resolver itself: a relative import from web/ names greenbutton.storage."""
    names = _imports(PACKAGE / "web" / "_app.py")
    assert "greenbutton.storage" in names and "greenbutton._asgi_tls" not in names
    assert "greenbutton._asgi_tls" in _imports(PACKAGE / "web" / "_tls.py")
