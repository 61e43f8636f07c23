"""The one hardened XML entry point of the package (SECURITY R33-R37, Appendix A).

Every Atom/ESPI/BatchList document goes through :func:`iter_elements`: lxml's ``iterparse``
with entity resolution, DTD loading and network access off, passed explicitly (before lxml
6.1 ``iterparse`` resolved entities by default), any DOCTYPE refused, and our own limits on
depth, text size, attribute and element counts, well below libxml2's backstops. Entries are
handed out one at a time and freed afterwards, so memory does not grow with the document.
lxml errors become :class:`~greenbutton.ParseError` with the line and a hint; no other
module may call an XML parse function (a static test enforces it).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from lxml import etree

from .._errors import ParseError, UnsafeXMLError, XMLLimitError
from ..models._namespaces import ATOM_NS, CUSTOMER_NS, ESPI_NS
from . import _accel
from ._archive import ZipMember, open_compressed

__all__ = [
    "ATOM",
    "CUSTOMER",
    "ESPI",
    "Limits",
    "Source",
    "check_subtree",
    "iter_elements",
    "open_source",
    "parse_own_xml",
]

ATOM, ESPI, CUSTOMER = ATOM_NS, ESPI_NS, CUSTOMER_NS  # models' one copy, under parse's names
XINCLUDE = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | ZipMember

_FEED = f"{{{ATOM}}}feed"
_ENTRY = f"{{{ATOM}}}entry"

# Passed explicitly on every parse: iterparse's defaults have differed between versions.
_SAFE: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "attribute_defaults": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
    "recover": False,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Safety limits for untrusted XML (SECURITY R36). ESPI needs a depth below 10."""

    max_depth: int = 64
    max_text: int = 1024 * 1024
    max_attributes: int = 256
    max_readings_per_block: int = 1_000_000
    max_entries: int = 50_000_000
    max_batch_resources: int = 10_000


def open_source(source: Source) -> tuple[IO[bytes], str | None, bool]:
    """Return ``(binary stream, display name, whether we opened it)`` for a source; a gzip
    or zip source comes back inflated (:mod:`._archive`)."""
    if isinstance(source, ZipMember):
        archive = open(source.archive, "rb")
        try:
            inflated = open_compressed(archive, str(source), member=source.member, owned=True)
        except BaseException:
            archive.close()
            raise
        if inflated is None:
            archive.close()
            raise ParseError("not a zip archive", resource=source.archive)
        return inflated, str(source), True
    name: str | None
    if isinstance(source, bytes | bytearray | memoryview):
        stream: IO[bytes] = io.BytesIO(bytes(source))
        name, close = None, True
    elif isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        stream, close = open(name, "rb"), True
    elif hasattr(source, "read"):
        stream, name, close = source, getattr(source, "name", None), False
    else:
        raise TypeError(
            f"expected a path, bytes or a binary file object, not {type(source).__name__}"
        )
    try:
        inflated = open_compressed(stream, name, owned=close)
    except BaseException:
        if close:
            stream.close()
        raise
    if inflated is None:
        return stream, name, close
    return inflated, name, True  # closing it closes only what we opened


def _depth_error(line: int | None, limit: int, name: str | None) -> XMLLimitError:
    return XMLLimitError(
        f"elements nested deeper than {limit} levels; Green Button data needs fewer than 10",
        line=line,
        resource=name,
    )


def check_subtree(el: etree._Element, depth: int, limits: Limits, name: str | None) -> None:
    """Enforce depth, text-size and attribute limits on ``el`` and everything below it."""
    max_depth, max_text, max_attr = limits.max_depth, limits.max_text, limits.max_attributes
    within = _accel.subtree_checker()
    if within is not None:
        try:
            if within(el, depth, max_depth, max_text, max_attr):
                return  # the compiled walk is within every limit; else redo it here, exactly
        except OverflowError:  # a limit beyond the C range ("unlimited"): check here
            pass
    stack = [(el, depth)]
    while stack:
        node, d = stack.pop()
        if d > max_depth:
            raise _depth_error(node.sourceline, max_depth, name)
        text = node.text
        if text is not None and len(text) > max_text:
            raise XMLLimitError(
                f"text of <{etree.QName(node).localname}> is {len(text)} characters, "
                f"above the limit of {max_text}",
                line=node.sourceline,
                resource=name,
            )
        tail = node.tail
        if tail is not None and len(tail) > max_text:
            raise XMLLimitError(
                f"text after <{etree.QName(node).localname}> is above the limit of {max_text}",
                line=node.sourceline,
                resource=name,
            )
        for value in node.attrib.values():
            if len(value) > max_text:
                raise XMLLimitError(
                    f"an attribute of <{etree.QName(node).localname}> is {len(value)} characters, "
                    f"above the text limit of {max_text}",
                    line=node.sourceline,
                    resource=name,
                )
        if len(node.attrib) > max_attr:
            raise XMLLimitError(
                f"<{etree.QName(node).localname}> has {len(node.attrib)} attributes, "
                f"above the limit of {max_attr}",
                line=node.sourceline,
                resource=name,
            )
        if (
            isinstance(node.tag, str)
            and node.tag.startswith("{")
            and node.tag[1:].startswith(XINCLUDE)
        ):
            raise UnsafeXMLError("XInclude is not allowed", line=node.sourceline, resource=name)
        stack.extend((child, d + 1) for child in node)


def _refuse_doctype(tree: etree._ElementTree, name: str | None) -> None:
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeXMLError(
            "the document has a DOCTYPE (DTDs and entities are refused); "
            "Green Button data never needs one",
            line=1,
            resource=name,
        )


def _entity_check(el: etree._Element, name: str | None) -> None:
    for node in el.iter(etree.Entity):
        raise UnsafeXMLError(
            f"entity reference {node.text} is refused (entities are not allowed)",
            line=node.sourceline,
            resource=name,
        )


def _at_end(reader: _Reader, exc: etree.XMLSyntaxError) -> bool:
    """Did the parser fail on the last line of input (a cut-off document)?"""
    if not reader.eof:
        reader.read(1 << 16)
        if not reader.eof:
            return False
    return exc.lineno is not None and exc.lineno >= reader.lines


def _syntax_error(exc: etree.XMLSyntaxError, name: str | None, *, truncated: bool) -> ParseError:
    msg = str(exc.msg or exc).strip()
    low = msg.lower()
    line = exc.lineno if exc.lineno else None
    if "entity" in low or "doctype" in low or "dtd" in low:
        return UnsafeXMLError(f"entities and DTDs are refused ({msg})", line=line, resource=name)
    if "excessive depth" in low:
        return XMLLimitError(f"elements nested too deeply ({msg})", line=line, resource=name)
    if "huge" in low or "too long" in low or "xml_parse_huge" in low:
        return XMLLimitError(f"a text node or name is too large ({msg})", line=line, resource=name)
    if "nul" in low or "char 0x0" in low:
        hint = "the document contains a NUL character"
    elif (
        truncated
        or "premature end" in low
        or "eof" in low
        or "end of data" in low
        or "truncated" in low
    ):
        hint = "the document is truncated (it ends before the root element is closed)"
    elif "encoding" in low or "utf-8" in low or "char" in low and "invalid" in low:
        hint = "the bytes do not match the document's encoding"
    elif "document is empty" in low or "start tag expected" in low:
        hint = "this is not an XML document"
    else:
        hint = "the document is not well-formed XML"
    return ParseError(f"{hint} ({msg})", line=line, resource=name)


_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_ACCEPTED = {"utf-8", "utf8", "utf-16", "utf16", "us-ascii", "ascii"}


class _Reader:
    """Feeds lxml the stream after checking its first bytes; remembers where it ended.

    Green Button data is UTF-8. UTF-16 is accepted with a byte-order mark (XML 1.0
    4.3.3 requires one); other declared encodings are refused rather than risk text
    decoded wrongly (UTF-8 bytes declared as ISO-8859-1 would parse, garbled).
    """

    def __init__(self, stream: IO[bytes], name: str | None):
        self._stream = stream
        self._name = name
        head = stream.read(4096)
        self._head: bytes | None = head
        self.lines = 1
        self.eof = False
        self._count = _accel.byte_counter()  # one C pass for both counts, when compiled
        if not head:
            raise ParseError(
                "the file is empty (0 bytes): not a Green Button document", resource=name
            )
        if head[:2] in (b"<\x00", b"\x00<"):
            raise ParseError(
                "the document's encoding is UTF-16 without a byte-order mark; "
                "save it as UTF-8 (or UTF-16 with a BOM)",
                line=1,
                resource=name,
            )
        if not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            m = _ENCODING.match(head.removeprefix(b"\xef\xbb\xbf"))
            if m and m.group(1).decode("ascii").lower() not in _ACCEPTED:
                enc = m.group(1).decode("ascii")
                raise ParseError(
                    f"the document declares encoding {enc!r}; Green Button data must be UTF-8 "
                    f"(convert it, e.g. iconv -f {enc} -t UTF-8)",
                    line=1,
                    resource=name,
                )

    def read(self, size: int = -1) -> bytes:
        if self._head is not None:
            data, self._head = self._head, None
        else:
            data = self._stream.read(size)
        if not data:
            self.eof = True
        # libxml2 checks attributes for duplicates pairwise: 100,000 attributes on one
        # element take minutes. No Green Button document comes near this density.
        if self._count is not None and type(data) is bytes:
            lines, attrs = self._count(data)
        else:
            lines, attrs = data.count(b"\n"), data.count(b"=")
        self.lines += lines
        if attrs > 2048 and attrs * 16 > len(data):
            raise XMLLimitError(
                f"{attrs} attributes in {len(data)} bytes near line {self.lines}; "
                "an element has far more attributes than Green Button data uses",
                resource=self._name,
            )
        return data


def iter_elements(
    source: Source, *, limits: Limits, name: str | None = None
) -> Iterator[tuple[str, etree._Element]]:
    """Stream a document as ``("entry", el)`` for each Atom entry, then ``("root", root)``.

    The caller must finish with an entry before asking for the next one: it is cleared and
    detached right after. ``("root", root)`` comes last, with entries already removed, so the
    caller can read feed-level metadata or a non-Atom root (BatchList, ServiceStatus, a bare
    resource).
    """
    _accel.refresh()  # GREENBUTTON_PURE_PYTHON is read once per document
    stream, opened_name, close = open_source(source)
    name = name or opened_name
    reader: _Reader | None = None
    try:
        reader = _Reader(stream, name)
        yield from _iter(reader, limits, name)
    except etree.XMLSyntaxError as exc:
        at_end = reader is not None and _at_end(reader, exc)
        raise _syntax_error(exc, name, truncated=at_end) from None
    except UnicodeError as exc:
        raise ParseError(
            f"the bytes do not match the document's encoding ({exc})", resource=name
        ) from None
    finally:
        if close:
            stream.close()


# Bytes handed to the parser at a time: large enough that per-chunk costs vanish, small
# enough that the tree (entries of at most two chunks, see _iter) stays in the CPU cache
# between building, reading and freeing it: 64 KiB parses the benchmark files 10-20 %
# faster than 256 KiB, and with less memory.
_CHUNK = 1 << 16


def _iter(
    stream: _Reader, limits: Limits, name: str | None
) -> Iterator[tuple[str, etree._Element]]:
    # Only "start" events: lxml runs a hook holding the GIL on every element for each kind
    # of event asked for, and "end" events (iterparse's) cost a fifth of a whole parse. An
    # entry is handed out once the parser has moved past it (_ready), in the order its end
    # tag came, as an "end" event would have.
    parser = etree.XMLPullParser(events=("start",), tag=(_FEED, _ENTRY), **_SAFE)
    events = parser.read_events()
    started: list[etree._Element] = []  # entries seen starting, not handed out yet
    done: list[etree._Element] = []  # entries handed out, to free
    checked = False
    entries = 0
    root: etree._Element | None = None
    while root is None:
        data = stream.read(_CHUNK)
        # Free the last chunk's entries only now, after the read: glibc merges small freed
        # blocks when a large block is asked for (the read's buffer), but hands them back
        # as they are to the nodes the next feed builds, at half the cost.
        for el in done:
            parent = el.getparent()
            el.clear(keep_tail=False)
            if parent is not None:
                parent.remove(el)  # the tree never holds more than two chunks of entries
        done.clear()
        error: etree.XMLSyntaxError | None = None
        try:
            if data:
                parser.feed(data)
            else:
                root = parser.close()
        except etree.XMLSyntaxError as exc:
            error = exc
        for _event, el in events:
            if not checked:
                _refuse_doctype(el.getroottree(), name)
                checked = True
            if el.tag == _ENTRY:
                started.append(el)
        for el, nested in _ready(started, done=root is not None):
            entries += 1
            if entries > limits.max_entries:
                raise XMLLimitError(
                    f"more than {limits.max_entries} entries in one document",
                    line=el.sourceline,
                    resource=name,
                )
            yield "entry", el
            if nested:  # out of the entry around it before that one is read
                parent = el.getparent()
                el.clear(keep_tail=False)
                if parent is not None:
                    parent.remove(el)
            else:
                done.append(el)
        if error is not None:
            raise error
    for el in done:
        parent = el.getparent()
        el.clear(keep_tail=False)
        if parent is not None:
            parent.remove(el)
    if not checked:
        _refuse_doctype(root.getroottree(), name)
    check_subtree(root, 1, limits, name)
    _entity_check(root, name)
    yield "root", root


def _closed(el: etree._Element) -> bool:
    """Has the parser passed the end tag of ``el``: is anything after it in the tree yet?"""
    node: etree._Element | None = el
    while node is not None:
        if node.getnext() is not None or node.tail is not None:
            return True
        node = node.getparent()
    return False


def _ready(started: list[etree._Element], *, done: bool) -> list[tuple[etree._Element, bool]]:
    """Take the closed entries off the front of ``started``, in end-tag order.

    ``started`` is in start-tag order; an entry nested in another (not Atom, but possible)
    ends first, so it comes before the entry around it, marked True (to be detached before
    the outer one is read).
    """
    out: list[tuple[etree._Element, bool]] = []
    while started and (done or _closed(started[0])):
        head = started.pop(0)
        inner = 0
        while inner < len(started) and any(a is head for a in started[inner].iterancestors()):
            inner += 1
        stack = [head]
        for el in started[:inner]:
            while not any(a is stack[-1] for a in el.iterancestors()):
                out.append((stack.pop(), True))
            stack.append(el)
        while len(stack) > 1:
            out.append((stack.pop(), True))
        out.append((head, False))
        del started[:inner]
    return out


#: For XML this package wrote itself: the same refusals as for input from others (no DTD,
#: no entities, no network, libxml2's size limits kept), whitespace between elements dropped.
_OWN = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=True
)


def parse_own_xml(data: bytes) -> etree._Element:
    """The root of XML greenbutton produced (the simulator re-styling its own documents);
    never for documents from elsewhere, which go through :func:`iter_elements` (R33)."""
    return etree.fromstring(data, _OWN)
