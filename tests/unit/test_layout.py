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


def _imports(path: Path, source: str | None = None) -> set[str]:
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    text = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
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
            or any(
                name == f"greenbutton.{front}" or name.startswith(f"greenbutton.{front}.")
                for front in FRONT_ENDS
            )
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


#: Private modules of other layers that a front end still imports, each with the reason.
#: The package root's base modules (``_errors``, ``_util``, ``_secret``, ``_urls``) are below
#: every layer and count as everyone's; a subpackage's private module
#: (``greenbutton.storage._schema``, ``greenbutton.client._client``) counts here.
PRIVATE_IMPORT_EXCEPTIONS: set[tuple[str, str]] = set()  # none: keep it that way


def _private_imports(path: Path, source: str | None = None) -> set[str]:
    """Private modules of another subpackage that ``path`` imports."""
    own = _module(path).split(".")[1]
    found = set()
    for name in _imports(path, source):
        parts = name.split(".")
        if len(parts) < 3 or parts[0] != "greenbutton" or parts[1] == own:
            continue
        if (PACKAGE / parts[1]).is_dir() and parts[2].startswith("_"):
            found.add(".".join(parts[:3]))
    return found


def test_front_ends_import_no_private_module_of_a_lower_layer() -> None:
    """STYLE 1: cli/, web/ and simulator/ are thin, with no SQL of their own; what they need
    from storage/ (or oauth/, parse/ ...) is a public name of that package."""
    found = {
        (_module(p), name)
        for front in FRONT_ENDS
        for p in sorted((PACKAGE / front).rglob("*.py"))
        for name in _private_imports(p)
    }
    assert found - PRIVATE_IMPORT_EXCEPTIONS == set()
    assert PRIVATE_IMPORT_EXCEPTIONS - found == set()  # a fixed one leaves the list


def test_the_private_import_check_sees_a_schema_import() -> None:
    """The checker itself: a relative import of storage._schema from web/ is found, the
    package's public name and web/'s own private modules are not."""
    source = (
        "from ..storage._schema import readings\n"
        "from ..storage import Store\n"
        "from ._config import WebConfig\n"
        "from .._errors import GreenButtonError\n"
    )
    found = _private_imports(PACKAGE / "web" / "_probe.py", source)
    assert found == {"greenbutton.storage._schema"}


# -- the import graph (issue 13.4) ------------------------------------------------------------


def _all_modules() -> set[str]:
    """Every module of the package: its ``.py`` files and its compiled extensions' sources
    (``parse/_cblocks.pyx``, imported as ``from . import _cblocks``)."""
    return {_module(p) for pattern in ("*.py", "*.pyx") for p in PACKAGE.rglob(pattern)}


def _import_nodes(nodes: list[ast.stmt], *, functions: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements among ``nodes``: module level, in ``if``/``try`` blocks and class
    bodies, and ``if TYPE_CHECKING:`` blocks (mypy follows them); with ``functions``, also
    the imports inside function bodies (deferred imports: they run at the first call)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not functions:
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                found.extend(_import_nodes([child], functions=functions))
            elif isinstance(child, ast.excepthandler):
                found.extend(_import_nodes(child.body, functions=functions))
    return found


def _import_graph(paths: list[Path], *, functions: bool) -> dict[str, set[str]]:
    """Module -> the package modules it imports. ``from . import x`` names the module ``x``
    when there is one, else the package; ``from .m import name`` names ``m``."""
    modules = _all_modules()
    graph: dict[str, set[str]] = {}
    for path in paths:
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in _import_nodes(ast.parse(path.read_text(), str(path)).body, functions=functions):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = package.split(".")
                if node.level:
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                names = [
                    f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                    for alias in node.names
                ]
            targets.update(name for name in names if name in modules and name != module)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_import_graph_has_no_cycle() -> None:
    """No two modules import each other, directly or round a loop, at module level (the
    imports that run at ``import``, ``if TYPE_CHECKING:`` blocks included). Imports inside
    function bodies are left out here: the CLI registers its commands that way (``cli``
    imports each command module when it runs, and each imports ``cli`` for its decorator)."""
    graph = _import_graph(sorted(PACKAGE.rglob("*.py")), functions=False)
    assert len(graph) > 30
    assert _cycles(graph) == []


def test_the_sdk_import_graph_has_no_cycle_even_through_deferred_imports() -> None:
    """Outside the front ends, not even a deferred import (inside a function) closes a loop:
    a module that needs a lower one's helper imports it, and the helper lives below both
    (the profile and the transport share the URL policy through ``_urls``)."""
    graph = _import_graph(_sdk_modules(), functions=True)
    assert "greenbutton._urls" in graph["greenbutton.models._profile"]
    assert "greenbutton.client._transport" not in graph["greenbutton.models._profile"]
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The checker itself: a loop, and the component it belongs to, are found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# -- the layer order (STYLE 1) ----------------------------------------------------------------

#: Bottom to top. A module imports only modules of its own layer or a lower one, even inside a
#: function. The base (the root's private modules) is below everything; the front ends are
#: siblings at the top and never import each other, except that ``cli`` starts the other two
#: (``greenbutton serve``, ``greenbutton simulator``). ``greenbutton/__init__`` is the facade
#: over all of the SDK and is left out; ``_asgi_tls`` is the server plumbing of web/ and
#: simulator/, at their level.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_errors", "_secret", "_util", "_urls"),
    ("models",),
    ("parse",),
    ("table",),
    ("analysis",),
    ("oauth",),
    ("espi",),
    ("client",),
    ("classic",),
    ("storage",),
    ("web", "simulator", "_asgi_tls"),
    ("cli", "__main__"),
)


def _layer(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else ""
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _layer_violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    found = set()
    for module, targets in graph.items():
        if module == "greenbutton":
            continue
        rank = _layer(module)
        own = module.split(".")[1]
        for target in targets:
            if target == "greenbutton":
                found.add((module, target))  # the facade is above everything
            elif _layer(target) > rank or {own, target.split(".")[1]} == {"web", "simulator"}:
                found.add((module, target))
    return found


def test_every_module_imports_only_its_own_layer_or_lower_ones() -> None:
    graph = _import_graph(sorted(PACKAGE.rglob("*.py")), functions=True)
    assert len(graph) > 90
    assert _layer_violations(graph) == set()


def test_the_layer_check_finds_an_upward_import() -> None:
    """The checker itself: the parser importing the client, a front end importing another,
    and the SDK importing the facade are each found; a downward import is not."""
    graph = {
        "greenbutton.parse._xml": {"greenbutton.client._client", "greenbutton.models._rows"},
        "greenbutton.web._app": {"greenbutton.simulator._server", "greenbutton.storage"},
        "greenbutton.storage._sync": {"greenbutton"},
    }
    assert _layer_violations(graph) == {
        ("greenbutton.parse._xml", "greenbutton.client._client"),
        ("greenbutton.web._app", "greenbutton.simulator._server"),
        ("greenbutton.storage._sync", "greenbutton"),
    }
