"""PG&E's wire format (``--style pge``, DESIGN 3.7; ESPI_NOTES 2.6 and 4), rewritten from
the clean documents the simulator writes.

What PG&E sends that a clean ESPI 4.0 writer does not (seen in ``pge_*`` fixtures): Atom
under the prefix ``ns1`` and ESPI under ``ns0`` instead of default namespaces; the prefix
re-declared on nearly every element; ``xsi:type="ns1:...Type"`` on every Atom child of an
entry, and ``xsi:type="xsd:..."`` on some ESPI values; entry ids as bare uuids; content as
the entry's last child; times with milliseconds (``2019-12-23T19:33:56.434Z``); customer
content in the default namespace (PG&E dropped ``ns0`` there in 2018). Clients that match
prefixes or element order break on it, which is the point of serving it.

The writers stay one (``table.iter_feed_chunks`` and the resource server's own entries);
this module only re-serialises their output, chunk by chunk for streamed feeds, so a long
feed is still never held whole. lxml parses each chunk (our own output, but with entities,
DTDs and network off all the same); the serialiser is hand-written because no library emits
redundant namespace declarations on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from html import escape

from lxml import etree

from ..models import ATOM_NS, CUSTOMER_NS, ESPI_NS
from ..parse import parse_own_xml

__all__ = ["pge_chunks", "pge_document"]

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_FEED_END = b"</feed>\n"
#: xsi:type PG&E puts on each Atom child of an entry.
_ATOM_TYPES = {
    "id": "idType",
    "link": "linkType",
    "title": "textType",
    "published": "dateTimeType",
    "updated": "dateTimeType",
    "content": "contentType",
}
#: ESPI elements PG&E labels with an XSD type: those the schema types ``anyType``
#: (ApplicationInformation), and ProgramIdMappings' values (``pge_smd_bulk_day_*``).
_XSD_TYPED = {
    "registration_access_token": "string",
    "dataCustodianScopeSelectionScreenURI": "string",
    "code": "int",
    "name": "string",
    "note": "string",
}
_TIME = re.compile(r"(\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$")


def _split(el: etree._Element) -> tuple[str, str]:
    q = etree.QName(el)
    return q.namespace or "", q.localname


def _text(text: str | None) -> str:
    return escape(text or "", quote=False)


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _content_xml(el: etree._Element, *, declare: bool, in_mapping: bool = False) -> str:
    """An ESPI (``ns0:``) or customer (default namespace) element and its subtree."""
    ns, name = _split(el)
    if ns == ESPI_NS:
        tag, decl = f"ns0:{name}", f' xmlns:ns0="{ESPI_NS}"' if declare else ""
    else:
        tag, decl = name, f' xmlns="{ns}"' if declare else ""
    typed = ""
    xsd = _XSD_TYPED.get(name) if ns == ESPI_NS else None
    if xsd is not None and (in_mapping or name not in ("code", "name", "note")):
        typed = f' xmlns:xsd="{XSD_NS}" xmlns:xsi="{XSI_NS}" xsi:type="xsd:{xsd}"'
    attrs = "".join(f' {k}="{_attr(v)}"' for k, v in el.attrib.items())
    mapping = in_mapping or name == "programIdMapping"
    inner = _text(el.text) + "".join(
        _content_xml(child, declare=False, in_mapping=mapping) + _text(child.tail)
        for child in el
        if isinstance(child.tag, str)
    )
    if not inner:
        return f"<{tag}{decl}{attrs}{typed}/>"
    return f"<{tag}{decl}{attrs}{typed}>{inner}</{tag}>"


_ESPI_DEFAULT = f'xmlns="{ESPI_NS}"'.encode()
_ESPI_PREFIXED = f'xmlns:ns0="{ESPI_NS}"'.encode()


def _fast_content(content: bytes) -> str | None:
    """The ESPI content of one of our entries with ``ns0:`` prefixes, by a byte rewrite:
    the writers emit no attributes, comments or CDATA there and escape every ``<`` in text,
    so each ``<`` opens a tag. None when the content needs the element walk (customer
    content, or values PG&E labels with xsi:type)."""
    if not content.startswith(b"<") or b"\0" in content or _ESPI_DEFAULT not in content[:200]:
        return None
    if any(f"<{name}>".encode() in content for name in _XSD_TYPED):
        return None
    out = content.replace(b"</", b"\0").replace(b"<", b"<ns0:").replace(b"\0", b"</ns0:")
    return out.replace(_ESPI_DEFAULT, _ESPI_PREFIXED, 1).decode()


def _atom_child(el: etree._Element, *, in_entry: bool, content: str | None = None) -> str:
    """One Atom child of a feed or an entry, the way PG&E writes it (``content``: the
    already rewritten content, if any)."""
    _, name = _split(el)
    tag = f"ns1:{name}"
    if in_entry:
        extra = (
            f' xmlns:xsi="{XSI_NS}" xsi:type="ns1:{_ATOM_TYPES[name]}"'
            if (name in _ATOM_TYPES)
            else ""
        )
    else:
        extra = f' xmlns:ns1="{ATOM_NS}"'
    if name == "link":
        href, rel = el.get("href", ""), el.get("rel", "")
        return f'<{tag} href="{_attr(href)}" rel="{_attr(rel)}"{extra}/>'
    if name == "content":
        inner = (
            content
            if content is not None
            else "".join(
                _content_xml(child, declare=True) for child in el if isinstance(child.tag, str)
            )
        )
        return f"<{tag}{extra}>{inner}</{tag}>"
    text = el.text or ""
    if name == "id":
        text = text.removeprefix("urn:uuid:")
    elif name in ("published", "updated"):
        text = _TIME.sub(lambda m: f"{m[1]}.{(m[2] or '')[:3].ljust(3, '0')}Z", text)
    attrs = ' type="text"' if name == "title" else ""
    return f"<{tag}{attrs}{extra}>{_text(text)}</{tag}>"


def _entry_xml(el: etree._Element, content: str | None = None) -> str:
    children = [c for c in el if isinstance(c.tag, str)]
    # PG&E: content last
    children.sort(key=lambda c: _split(c)[1] == "content")
    inner = "".join(_atom_child(c, in_entry=True, content=content) for c in children)
    return f'<ns1:entry xmlns:ns1="{ATOM_NS}">{inner}</ns1:entry>'


def _feed_open(el: etree._Element) -> str:
    head = "".join(
        _atom_child(c, in_entry=False)
        for c in el
        if isinstance(c.tag, str) and _split(c)[1] != "entry"
    )
    return f'<ns1:feed xmlns:ns1="{ATOM_NS}" xmlns:ns0="{ESPI_NS}">{head}\n'


def pge_document(body: bytes) -> bytes:
    """A whole document (feed, entry, BatchList, ServiceStatus) in PG&E's style."""
    root = parse_own_xml(body)
    ns, name = _split(root)
    if ns == ATOM_NS and name == "feed":
        entries = "".join(
            _entry_xml(c) + "\n" for c in root if isinstance(c.tag, str) and _split(c)[1] == "entry"
        )
        out = _feed_open(root) + entries + "</ns1:feed>\n"
    elif ns == ATOM_NS and name == "entry":
        out = _entry_xml(root) + "\n"
    elif ns in (ESPI_NS, CUSTOMER_NS):
        out = _content_xml(root, declare=True) + "\n"
    else:  # pragma: no cover - the simulator writes nothing else
        raise ValueError(f"no PG&E style for a {etree.QName(root).text} document")
    return _XML_DECL + out.encode()


def pge_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A streamed feed (the writer's chunks: header, one per entry, ``</feed>``) in PG&E's
    style, chunk by chunk."""
    it = iter(chunks)
    header = next(it)
    root = parse_own_xml(header + _FEED_END)
    yield _XML_DECL + _feed_open(root).encode()
    wrapper = f'<feed xmlns="{ATOM_NS}">'.encode()
    for chunk in it:
        if chunk == _FEED_END:
            yield b"</ns1:feed>\n"
            return
        yield _entry_chunk(wrapper, chunk).encode() + b"\n"


def _entry_chunk(wrapper: bytes, chunk: bytes) -> str:
    """One entry of the writer's stream: the Atom shell through lxml, the ESPI content
    (an IntervalBlock's hundreds of readings) by :func:`_fast_content` when it can."""
    start, end = chunk.find(b"<content>"), chunk.rfind(b"</content>")
    content = _fast_content(chunk[start + 9 : end]) if 0 <= start < end else None
    if content is not None:
        chunk = chunk[:start] + b"<content/>" + chunk[end + 10 :]
    entry = parse_own_xml(wrapper + chunk + _FEED_END)[0]
    return _entry_xml(entry, content)
