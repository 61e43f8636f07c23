"""SECURITY R38: no XPath/ElementPath expression in ``src/greenbutton`` is built from document
or request data. A static check over the source (AST for ``.py``, text for the Cython file):
every ``.xpath()``, ``.find()``, ``.findall()``, ``.iterfind()``, ``.findtext()`` call and
every ``XPath``/``ETXPath``/``XPathEvaluator`` construction takes, as its expression, a string
literal, a module-level constant, or an expression made only of those (``"{%s}entry" % NS``).
Values go in as XPath variables (``.xpath("//x[@id=$id]", id=value)``), which the check
allows because keyword arguments are not the expression.

Today the parser walks elements by tag and uses no ElementPath at all; the same method names
appear on regular expressions and on ``parse._links._Parents`` (not XML), listed in
:data:`NOT_XML` with the reason, and each entry must still exist so the list cannot rot.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "greenbutton"

#: Methods that take an XPath or ElementPath expression on lxml/ElementTree objects.
PATH_METHODS = frozenset({"xpath", "find", "findall", "iterfind", "findtext"})
#: Constructors that compile an expression.
PATH_CLASSES = frozenset({"XPath", "ETXPath", "XPathEvaluator", "XPathElementEvaluator"})

#: (file relative to SRC, receiver as written) whose ``find*`` is not ElementPath, and why.
NOT_XML: dict[tuple[str, str], str] = {
    ("parse/_links.py", "up_index"): "_Parents.find(record): a parent lookup by href",
    ("parse/_links.py", "mr_index"): "_Parents.find(record): a parent lookup by href",
    ("web/_app.py", "_RESOURCES_TAG"): "a compiled regular expression (re.findall)",
    ("cli/_demo.py", "_HIDDEN"): "a compiled regular expression (re.findall)",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    call: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.call}"


def _module_constants(tree: ast.Module) -> set[str]:
    """Names bound at module level, once, to a constant expression (in source order)."""
    constants: set[str] = set()
    assigned: dict[str, int] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name):
                assigned[target.id] = assigned.get(target.id, 0) + 1
                if value is not None and _constant(value, constants):
                    constants.add(target.id)
    # Rebinding anywhere in the module (a function's ``global``) makes a name not constant.
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            constants -= set(node.names)
    return {name for name in constants if assigned[name] == 1}


def _constant(node: ast.expr, constants: set[str]) -> bool:
    """Is ``node`` built only from literals and module-level constants?"""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | bytes | int | float)
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return _constant(node.left, constants) and _constant(node.right, constants)
    if isinstance(node, ast.Tuple):
        return all(_constant(e, constants) for e in node.elts)
    if isinstance(node, ast.JoinedStr):
        return all(
            _constant(v.value if isinstance(v, ast.FormattedValue) else v, constants)
            for v in node.values
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        # "...".format(CONST) and "sep".join((A, B)) of constants
        if node.func.attr in ("format", "join") and not node.keywords:
            return _constant(node.func.value, constants) and all(
                _constant(a, constants) for a in node.args
            )
    return False


def _expression(call: ast.Call) -> ast.expr | None:
    """The path/expression argument of a call: the first positional or ``path=``/``_path=``."""
    if call.args:
        return call.args[0]
    for kw in call.keywords:
        if kw.arg in ("path", "_path", "xpath"):
            return kw.value
    return None


def check_source(text: str, path: str) -> tuple[list[Finding], set[tuple[str, str]]]:
    """Calls in ``text`` whose expression is not constant, and the NOT_XML entries used."""
    tree = ast.parse(text, filename=path)
    constants = _module_constants(tree)
    findings: list[Finding] = []
    used: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in PATH_METHODS:
            receiver = ast.unparse(func.value)
            if (path, receiver) in NOT_XML:
                used.add((path, receiver))
                continue
        elif not (
            (isinstance(func, ast.Attribute) and func.attr in PATH_CLASSES)
            or (isinstance(func, ast.Name) and func.id in PATH_CLASSES)
        ):
            continue
        expr = _expression(node)
        if expr is None or not _constant(expr, constants):
            findings.append(Finding(path, node.lineno, ast.unparse(node)[:120]))
    return findings, used


#: In Cython source (not parseable by ast), any of these is reported for review.
_PYX_PATH_CALL = re.compile(r"\.(?:xpath|findall|iterfind|findtext|find)\s*\(|\b(?:ET)?XPath\s*\(")


def test_no_xpath_or_elementpath_built_from_data() -> None:
    """R38 over every module of src/greenbutton."""
    findings: list[Finding] = []
    used: set[tuple[str, str]] = set()
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the walk found the package
    for file in files:
        rel = file.relative_to(SRC).as_posix()
        found, seen = check_source(file.read_text(encoding="utf-8"), rel)
        findings += found
        used |= seen
    for file in sorted(SRC.rglob("*.pyx")):
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if _PYX_PATH_CALL.search(line.split("#", 1)[0]):
                findings.append(Finding(file.relative_to(SRC).as_posix(), number, line.strip()))
    assert not findings, "XPath/ElementPath expressions not constant (R38):\n" + "\n".join(
        map(str, findings)
    )
    assert used == set(NOT_XML), f"stale NOT_XML entries: {sorted(set(NOT_XML) - used)}"


@pytest.mark.parametrize(
    "snippet",
    [
        "def f(root, doc_id):\n    return root.xpath(f\"//a:entry[a:id='{doc_id}']\")",
        "def f(root, name):\n    return root.find('{%s}' % NS + name)\nNS = 'x'",
        "def f(root, tag):\n    return root.findall('.//' + tag)",
        "def f(root, q):\n    return root.iterfind(q)",
        "def f(root, q):\n    return root.findtext(path=q)",
        "from lxml import etree\ndef f(q):\n    return etree.XPath('//x[@id=\"%s\"]' % q)",
        "from lxml.etree import XPath\ndef f(q):\n    return XPath(q)",
        "def f(root):\n    return root.find(SEL)\nSEL = 'a'\nSEL = input()",  # rebound
    ],
)
def test_the_check_catches_built_expressions(snippet: str) -> None:
    """The checker is not vacuous: expressions built from data are reported (R38)."""
    findings, _ = check_source(snippet, "snippet.py")
    assert findings, snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "def f(root):\n    return root.find('{http://www.w3.org/2005/Atom}entry')",
        "NS = 'http://naesb.org/espi'\nENTRY = '{%s}entry' % NS\n"
        "def f(root):\n    return root.findall(ENTRY)",
        "NS = 'x'\ndef f(root):\n    return root.iterfind(f'{{{NS}}}entry')",
        "from lxml import etree\nFIND = etree.XPath('//e:id[. = $v]')\n"
        "def f(root, v):\n    return root.xpath('//e:id[. = $v]', v=v)",
    ],
)
def test_the_check_allows_constants_and_xpath_variables(snippet: str) -> None:
    findings, _ = check_source(snippet, "snippet.py")
    assert not findings, findings
