"""The compiled parse accelerator (``greenbutton.parse._cblocks``) changes speed, never results.

Three checks: the extension is built and in use here (in CI a missing build fails rather
than skips); random IntervalBlocks, valid and subtly broken, give the same columns, warnings
or error (message and line) through the C walk and through the pure-Python paths; and every
real fixture parses to the same Document both ways. ``GREENBUTTON_PURE_PYTHON=1`` is the
switch the comparison flips; the whole suite can also be run with it set.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from lxml import etree

import greenbutton
from greenbutton import ParseError
from greenbutton.models import ABSENT, ReadingColumns
from greenbutton.parse import Limits, _accel, _blocks
from greenbutton.parse._xml import _SAFE, ESPI, check_subtree, iter_elements
from tests.conftest import FIXTURES

PARSE_DIR = Path(_blocks.__file__).resolve().parent
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@contextmanager
def pure_python(on: bool) -> Iterator[None]:
    """Run the body with the accelerator switched off (``on``) or on, then restore."""
    old = os.environ.get(_accel.PURE_PYTHON_ENV)
    if on:
        os.environ[_accel.PURE_PYTHON_ENV] = "1"
    else:
        os.environ.pop(_accel.PURE_PYTHON_ENV, None)
    _accel.refresh()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_accel.PURE_PYTHON_ENV, None)
        else:
            os.environ[_accel.PURE_PYTHON_ENV] = old
        _accel.refresh()


def needs_accelerator() -> None:
    if not _accel.available():
        pytest.skip("the C accelerator is not built here (see test_accelerator_is_built)")


def normalized(value: Any) -> Any:
    """A Document (or part of one) as plain, comparable data: columns become lists."""
    if isinstance(value, ReadingColumns):
        return (
            "columns",
            value.start.tolist(),
            value.duration.tolist(),
            value.value.tolist(),
            value.cost.tolist(),
            value.quality.tolist(),
            value.tou.tolist(),
            sorted(value.extra_quality.items()),
        )
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple((f.name, normalized(getattr(value, f.name))) for f in dataclasses.fields(value)),
        )
    if isinstance(value, list | tuple):
        return tuple(normalized(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted(((repr(k), normalized(v)) for k, v in value.items()), key=repr))
    return value


def outcome(data: bytes | Path, limits: Limits | None = None) -> Any:
    """What ``greenbutton.parse`` makes of ``data``: the Document, or the error it raises."""
    try:
        doc = greenbutton.parse(data, limits=limits)
    except ParseError as exc:
        return ("error", type(exc).__name__, str(exc), exc.line)
    return ("document", normalized(doc))


def both_ways(data: bytes | Path, limits: Limits | None = None) -> tuple[Any, Any]:
    with pure_python(False):
        fast = outcome(data, limits)
    with pure_python(True):
        pure = outcome(data, limits)
    return fast, pure


# -- (1) the extension is there -----------------------------------------------------------


def test_accelerator_is_built() -> None:
    """The install compiled ``_cblocks`` and the parser uses it (DESIGN 6 needs it)."""
    if not _accel.available():
        message = (
            "greenbutton.parse._cblocks is not built: the install could not compile it "
            f"(a C compiler and Python headers are needed; see hatch_build.py): "
            f"{_accel.why_missing()}"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with pure_python(False):
        assert _accel.enabled()
        assert _accel.block_reader() is not None
        assert _accel.byte_counter() is not None
        assert _accel.subtree_checker() is not None
    with pure_python(True):
        assert not _accel.enabled()
        assert _accel.block_reader() is None


def test_accelerator_is_not_stale() -> None:
    """An editable install compiles once; a later change to the .pyx needs a reinstall."""
    needs_accelerator()
    from greenbutton.parse import _cblocks

    built = Path(_cblocks.__file__)
    source = PARSE_DIR / "_cblocks.pyx"
    if built.parent == PARSE_DIR and source.is_file():
        assert built.stat().st_mtime >= source.stat().st_mtime, (
            f"{built.name} is older than _cblocks.pyx: run `pip install -e .` (or `make`) again"
        )


def test_pure_python_switch_is_read_per_document() -> None:
    needs_accelerator()
    data = (FIXTURES / "gba_demo_hourly_32days.xml").read_bytes()
    with pure_python(True):
        greenbutton.parse(data)
        assert not _accel.enabled()
    with pure_python(False):
        greenbutton.parse(data)
        assert _accel.enabled()


# -- (2) random blocks: same result both ways ----------------------------------------------

OTHER = "urn:example:other"
CLEAN_WS = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n  ", "  \n\t"])
WS = st.sampled_from(["", " ", "\n", "\t", "\r\n  ", "  \n\t", "\u00a0", "\u2003"])
ODD_TEXT = [
    "",
    " ",
    "+",
    "-",
    "- 5",
    "+-5",
    "1_000",
    "1.5",
    "1e3",
    "0x10",
    "abc",
    "\u0663",
    "5 5",
    "00000000000000000000007",
    "-0",
    "+0",
    "\u00a05",
    "5\u2003",
    "\ufeff5",
    "18446744073709551617",  # 2**64 + 1: wraps to 1 in 64-bit unsigned arithmetic
    "-18446744073709551615",
    "36893488147419103233",
    "9" * 20,
]


@st.composite
def number_text(
    draw: st.DrawFn, low: int = INT64_MIN, high: int = INT64_MAX, clean: bool = True
) -> str:
    """The text of a numeric element: a plain integer in range when ``clean``, else now and
    then something ``int()`` reads differently, refuses, or the C walk must leave alone."""
    if clean:
        n = draw(
            st.one_of(st.integers(max(low, -(10**7)), min(high, 10**7)), st.integers(low + 1, high))
        )
        text = str(n)
        if n >= 0 and draw(st.integers(0, 5)) == 0:
            text = "+" + text
        if draw(st.integers(0, 6)) == 0:
            digits = text.lstrip("+-")
            zeros = "0" * draw(st.integers(0, max(0, 19 - len(digits))))
            text = text[: len(text) - len(digits)] + zeros + digits
        return draw(CLEAN_WS) + text + draw(CLEAN_WS)
    kind = draw(st.integers(0, 4))
    if kind == 0:
        text = str(
            draw(
                st.sampled_from(
                    [INT64_MIN, INT64_MAX, INT64_MAX + 1, INT64_MIN - 1, INT32_MIN, INT32_MAX]
                    + [INT32_MAX + 1, INT32_MIN - 1, 0, -1, 10**19, -(10**19), 10**30]
                )
            )
        )
    elif kind == 1:
        text = draw(st.sampled_from(ODD_TEXT))
    else:
        text = draw(number_text(low, high, clean=True))
    text = draw(WS) + text + draw(WS)
    split = draw(st.integers(0, 5))
    if split == 0 and len(text) > 1:  # text split by a comment (the parser drops it)
        cut = draw(st.integers(1, len(text) - 1))
        text = text[:cut] + "<!--x-->" + text[cut:]
    elif split == 1:
        text = f"<![CDATA[{text}]]>"
    elif split == 2 and len(text) > 1:
        cut = draw(st.integers(1, len(text) - 1))
        text = text[:cut] + f"<![CDATA[{text[cut:]}]]>"
    elif split == 3 and text.strip():
        c = text.strip()[-1]
        text = text.replace(c, f"&#{ord(c)};", 1)
    elif split == 4:
        text = text + draw(st.sampled_from(["<espi:x/>", "<o:x/>", "&amp;"]))
    return text


def leaf(draw: st.DrawFn, name: str, text: str, clean: bool) -> str:
    prefix = "espi" if clean or draw(st.integers(0, 3)) else "o"
    return f"<{prefix}:{name}>{text}</{prefix}:{name}>"


@st.composite
def interval_reading(draw: st.DrawFn, clean: bool) -> str:
    """One IntervalReading: the plain shape when ``clean``, else with a few defects drawn
    from missing, repeated, extra, foreign-namespace and badly written parts."""
    odd = (lambda: draw(st.integers(0, 6)) == 0) if not clean else (lambda: False)
    parts: list[str] = []
    tp: list[str] = []
    for name in draw(st.permutations(["start", "duration"])):
        if not odd():
            low = 0 if name == "duration" and not odd() else INT64_MIN
            bad = odd()
            tp.append(leaf(draw, name, draw(number_text(low=low, clean=not bad)), not bad))
    if odd():
        tp.append(leaf(draw, "extra", "1", True))
    if odd():
        tp.append(tp[0] if tp else leaf(draw, "start", "0", True))
    if not odd():
        parts.append(f"<espi:timePeriod>{draw(CLEAN_WS)}{''.join(tp)}</espi:timePeriod>")
    if not odd():
        bad = odd()
        parts.append(leaf(draw, "value", draw(number_text(clean=not bad)), not bad))
    if draw(st.booleans()):
        bad = odd()
        parts.append(leaf(draw, "cost", draw(number_text(clean=not bad)), not bad))
    for _ in range(draw(st.sampled_from([0, 1, 1, 2] if not clean else [0, 1]))):
        bad = odd()
        qs = [leaf(draw, "quality", draw(number_text(INT32_MIN, INT32_MAX, not bad)), not bad)]
        if odd():
            qs.append(qs[0])
        parts.append(f"<espi:ReadingQuality>{''.join(qs)}</espi:ReadingQuality>")
    if draw(st.booleans()):
        bad = odd()
        parts.append(leaf(draw, "tou", draw(number_text(INT32_MIN, INT32_MAX, not bad)), not bad))
    if odd():
        parts.append(draw(st.sampled_from(["<espi:note>n</espi:note>", "<o:value>1</o:value>"])))
    if odd() and parts:
        parts.append(parts[0])  # a repeated field
    parts = draw(st.permutations(parts))
    sep = draw(st.sampled_from(["", " ", "\n", "\n  "]))
    return f"<espi:IntervalReading>{sep}{sep.join(parts)}</espi:IntervalReading>"


@st.composite
def interval_block(draw: st.DrawFn) -> str:
    """An IntervalBlock's children: readings (each clean nine times in ten), an interval."""
    children = [
        draw(interval_reading(clean=draw(st.integers(0, 9)) > 0))
        for _ in range(draw(st.integers(0, 6)))
    ]
    if draw(st.integers(0, 3)):
        clean = draw(st.integers(0, 5)) > 0
        fields = [
            leaf(draw, "start", draw(number_text(clean=clean)), clean),
            leaf(draw, "duration", draw(number_text(low=0 if clean else -100, clean=clean)), clean),
        ]
        if clean:
            fields = draw(st.sampled_from([fields, fields[::-1], fields[:1], fields[1:], []]))
        else:
            fields = draw(st.lists(st.sampled_from(fields), max_size=3))
        at = draw(st.integers(0, len(children)))
        children.insert(at, f"<espi:interval>{''.join(fields)}</espi:interval>")
    if draw(st.integers(0, 20)) == 0:
        children.append("<espi:interval><espi:start>1</espi:start></espi:interval>")
    if draw(st.integers(0, 25)) == 0:
        children.append("<o:IntervalReading/>")
    sep = draw(st.sampled_from(["", "\n", "\n    "]))
    return sep.join(children)


def block_document(body: str) -> bytes:
    return (
        f'<espi:IntervalBlock xmlns:espi="{ESPI}" xmlns:o="{OTHER}">\n{body}\n'
        "</espi:IntervalBlock>\n"
    ).encode()


def parsed_root(data: bytes) -> etree._Element | None:
    """The document's root element, parsed the way the package parses (or None)."""
    try:
        for kind, el in iter_elements(data, limits=Limits()):
            if kind == "root":
                return el
    except ParseError:
        return None
    return None


def block_outcome(root: etree._Element, limits: Limits) -> Any:
    warnings: list[str] = []
    try:
        interval, cols = _blocks.read_block(root, 1, limits, "b.xml", warnings)
    except ParseError as exc:
        return ("error", type(exc).__name__, str(exc), exc.line)
    return ("block", normalized(interval), normalized(cols), warnings)


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(body=interval_block(), max_readings=st.sampled_from([1_000_000, 3, 0]))
def test_c_walk_takes_exactly_what_the_python_walk_takes(body: str, max_readings: int) -> None:
    """Where ``_cblocks.read_block`` gives columns, ``_blocks._fast`` gives the same ones;
    where it gives up, nothing was written."""
    needs_accelerator()
    from greenbutton.parse import _cblocks

    root = parsed_root(block_document(body))
    if root is None:
        return
    limits = Limits(max_readings_per_block=max_readings)
    cols = ReadingColumns()
    got = _cblocks.read_block(root, max_readings, cols)
    try:
        expected = _blocks._fast(root, limits)
    except (ValueError, TypeError, OverflowError, _blocks._Slow):
        expected = None
    if got is None:
        assert len(cols) == 0 and all(
            len(a) == 0 for a in (cols.duration, cols.value, cols.cost, cols.quality, cols.tou)
        )
        return
    assert expected is not None, body
    interval, py_cols = expected
    assert (interval.start, interval.duration) == got
    assert normalized(cols) == normalized(py_cols)
    # The C walk leaves the sentinels to Python: a value or start it wrote is never one.
    assert ABSENT not in cols.value and ABSENT not in cols.start


@SETTINGS
@given(body=interval_block(), max_readings=st.sampled_from([1_000_000, 2]))
def test_block_reads_the_same_with_and_without_the_accelerator(
    body: str, max_readings: int
) -> None:
    """Columns, warnings, or the error and its line: the same through either path."""
    needs_accelerator()
    data = block_document(body)
    limits = Limits(max_readings_per_block=max_readings)
    with pure_python(False):
        root = parsed_root(data)
        fast = None if root is None else block_outcome(root, limits)
    with pure_python(True):
        root = parsed_root(data)
        pure = None if root is None else block_outcome(root, limits)
    assert fast == pure, body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(interval_block(), min_size=1, max_size=3))
def test_documents_parse_the_same_with_and_without_the_accelerator(bodies: list[str]) -> None:
    """Whole feeds through ``greenbutton.parse``: the same Document, or the same error."""
    needs_accelerator()
    entries = "".join(
        f"""
  <entry>
    <id>urn:uuid:block-{i}</id>
    <link rel="self" href="{BASE}/MeterReading/1/IntervalBlock/{i}"/>
    <link rel="up" href="{BASE}/MeterReading/1/IntervalBlock"/>
    <content>
      <espi:IntervalBlock>
{body}
      </espi:IntervalBlock>
    </content>
  </entry>"""
        for i, body in enumerate(bodies)
    )
    data = FEED.format(entries=entries).encode()
    fast, pure = both_ways(data)
    assert fast == pure


BASE = "https://utility.example/DataCustodian/espi/1_1/resource/Subscription/5/UsagePoint/1"
FEED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="{ESPI}" xmlns:o="{OTHER}">\n'
    "  <id>urn:uuid:feed</id>\n"
    "  <entry>\n"
    "    <id>urn:uuid:up</id>\n"
    f'    <link rel="self" href="{BASE}"/>\n'
    f'    <link rel="related" href="{BASE}/MeterReading"/>\n'
    "    <content><espi:UsagePoint/></content>\n"
    "  </entry>\n"
    "  <entry>\n"
    "    <id>urn:uuid:mr</id>\n"
    f'    <link rel="self" href="{BASE}/MeterReading/1"/>\n'
    f'    <link rel="up" href="{BASE}/MeterReading"/>\n'
    f'    <link rel="related" href="{BASE}/MeterReading/1/IntervalBlock"/>\n'
    "    <content><espi:MeterReading/></content>\n"
    "  </entry>{entries}\n"
    "</feed>\n"
)


def test_known_edges_read_the_same() -> None:
    """Hand-picked cases the random ones may take a while to reach."""
    needs_accelerator()
    cases = [
        "<espi:value>-9223372036854775808</espi:value>",  # ABSENT itself
        "<espi:value>9223372036854775807</espi:value>",
        "<espi:value>9223372036854775808</espi:value>",
        "<espi:value> +0000000000000000042 </espi:value>",
        "<espi:value>00000000000000000000042</espi:value>",
        "<espi:value>18446744073709551658</espi:value>",  # 2**64 + 42
        "<espi:value>-18446744073709551574</espi:value>",
        "<espi:value>4<!--c-->2</espi:value>",
        "<espi:value><![CDATA[42]]></espi:value>",
        "<espi:value>&#52;2</espi:value>",
        "<espi:value>1_000</espi:value>",
        "<espi:value>\u00a042</espi:value>",
        "<espi:value>42</espi:value><espi:value>43</espi:value>",
        "<espi:value>42</espi:value><espi:tou>2147483648</espi:tou>",
        "<espi:value>42</espi:value><espi:tou>-2147483648</espi:tou>",
        "<espi:value>42</espi:value><espi:cost>-9223372036854775808</espi:cost>",
        "<espi:value>42</espi:value><espi:ReadingQuality><espi:quality>-2147483648"
        "</espi:quality></espi:ReadingQuality><espi:ReadingQuality><espi:quality>7"
        "</espi:quality></espi:ReadingQuality>",
        "<espi:value>42</espi:value><espi:ReadingQuality/>",
        "<espi:value>42</espi:value><o:tou>1</o:tou>",
    ]
    for fields in cases:
        for period in (
            "<espi:timePeriod><espi:duration>900</espi:duration><espi:start>0</espi:start>"
            "</espi:timePeriod>",
            "<espi:timePeriod><espi:duration>-1</espi:duration><espi:start>0</espi:start>"
            "</espi:timePeriod>",
            "<espi:timePeriod><espi:start>1.5</espi:start><espi:duration>9</espi:duration>"
            "</espi:timePeriod>",
            "",
        ):
            body = f"<espi:IntervalReading>{period}{fields}</espi:IntervalReading>"
            for interval in ("", "<espi:interval><espi:start>0</espi:start></espi:interval>"):
                data = FEED.format(
                    entries=f"""
  <entry>
    <link rel="self" href="{BASE}/MeterReading/1/IntervalBlock/1"/>
    <content><espi:IntervalBlock>{interval}{body}</espi:IntervalBlock></content>
  </entry>"""
                ).encode()
                fast, pure = both_ways(data)
                assert fast == pure, body


def test_reading_limit_is_the_same_error() -> None:
    needs_accelerator()
    body = "".join(
        f"<espi:IntervalReading><espi:timePeriod><espi:duration>900</espi:duration>"
        f"<espi:start>{900 * i}</espi:start></espi:timePeriod><espi:value>{i}</espi:value>"
        "</espi:IntervalReading>\n"
        for i in range(5)
    )
    data = block_document(body)
    for limit in (4, 5, 0):
        fast, pure = both_ways(data, Limits(max_readings_per_block=limit))
        assert fast == pure
        assert (fast[0] == "error") == (limit < 5)


# -- the subtree limit check and the byte counter ------------------------------------------


@SETTINGS
@given(
    body=st.lists(
        st.sampled_from(
            [
                "<a>x</a>",
                "<a k='v'>text</a>",
                "<a k='" + "v" * 40 + "'/>",
                "<b>" + "t" * 50 + "</b>",
                "<c><d><e><f>deep</f></e></d></c>",
                "<c>\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9</c>",
                "tail" * 5,
                "<![CDATA[cdata]]>",
                "<x:i xmlns:x='http://www.w3.org/2001/XInclude'/>",
                "<x:i xmlns:x='http://www.w3.org/2003/XIncludeX'/>",
                "<g a='1' b='2' c='3' d='4'/>",
                "<h>a&amp;b</h>",
            ]
        ),
        max_size=8,
    ),
    max_depth=st.integers(0, 6),
    max_text=st.sampled_from([0, 5, 6, 10, 12, 40, 1000]),
    max_attributes=st.integers(0, 5),
    depth=st.integers(0, 3),
)
def test_subtree_check_agrees(
    body: list[str], max_depth: int, max_text: int, max_attributes: int, depth: int
) -> None:
    """The C pre-check never passes a subtree the Python check would refuse."""
    needs_accelerator()
    data = f"<root><top>{''.join(body)}</top>tail</root>".encode()
    root = etree.fromstring(data, etree.XMLParser(**_SAFE))
    top = root[0]
    limits = Limits(max_depth=max_depth, max_text=max_text, max_attributes=max_attributes)
    results = []
    for pure in (False, True):
        with pure_python(pure):
            try:
                check_subtree(top, depth, limits, "t.xml")
                results.append("ok")
            except ParseError as exc:
                results.append((type(exc).__name__, str(exc), exc.line))
    assert results[0] == results[1]


@given(data=st.binary(max_size=3000))
def test_byte_counter_counts_like_bytes_count(data: bytes) -> None:
    needs_accelerator()
    from greenbutton.parse import _cblocks

    assert _cblocks.count_lines_and_equals(data) == (data.count(b"\n"), data.count(b"="))


# -- (3) every real fixture, both ways ------------------------------------------------------

FIXTURE_FILES = sorted(p.name for p in FIXTURES.glob("*.xml"))


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_parses_the_same_with_and_without_the_accelerator(name: str) -> None:
    """Every reading column, every resource and every warning of every fixture."""
    needs_accelerator()
    fast, pure = both_ways(FIXTURES / name)
    assert fast == pure
    rows_fast, rows_pure = [], []
    for rows, on in ((rows_fast, False), (rows_pure, True)):
        with pure_python(on):
            rows.extend(greenbutton.iter_readings(FIXTURES / name))
    assert rows_fast == rows_pure
