"""Compressed downloads, read as they come (issue 12.4): utilities hand out Green Button files
zipped (PG&E's Download My Data gives a ``.zip`` with one XML file per service) or gzipped.

The first bytes decide, not the file name: ``1f 8b`` is gzip (RFC 1952), ``PK\\x03\\x04`` a zip
(APPNOTE 4.3.7). A gzip stream is inflated as the parser reads it; a zip's XML member is
opened in place (:mod:`zipfile` needs a seekable file, so a zip given as a stream is read
into memory first). A zip holding several XML files is several documents:
:func:`documents` lists them as :class:`ZipMember` sources, and :func:`~greenbutton.parse`
of the zip itself says to do that. The stdlib does the decompression; what is written here
is the sniffing, the member choice and the inflation bound.

Decompression bombs: parsing streams with bounded memory, so a bomb can only cost time.
:class:`_Bounded` caps it: past ``FLOOR`` bytes, a stream inflating more than ``RATIO``
times its compressed size is refused (XML interval data compresses 10-40 times).
"""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, cast

from .._errors import ParseError, XMLLimitError

__all__ = ["ZipMember", "documents", "open_compressed"]

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
#: Inflated bytes allowed before the ratio applies, and the ratio after that.
FLOOR = 64 * 1024**2
RATIO = 200


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One XML file inside a zip archive, as a parser source (``archive`` is its path)."""

    archive: str
    member: str

    def __str__(self) -> str:
        return f"{self.archive}/{self.member}"


def _xml_members(archive: zipfile.ZipFile) -> list[str]:
    return [
        info.filename
        for info in archive.infolist()
        if not info.is_dir()
        and info.filename.lower().endswith(".xml")
        and not info.filename.startswith("__MACOSX/")  # Finder's resource forks
    ]


def documents(path: str | os.PathLike[str]) -> list[str | ZipMember]:
    """The documents a file holds: each XML member of a zip, or else the file itself."""
    name = os.fspath(path)
    with open(name, "rb") as f:
        if f.read(4) != ZIP_MAGIC:
            return [name]
    try:
        with zipfile.ZipFile(name) as archive:
            members = _xml_members(archive)
    except zipfile.BadZipFile as exc:
        raise ParseError(f"the zip archive is damaged ({exc})", resource=name) from None
    if not members:
        raise ParseError("the zip archive holds no .xml file", resource=name)
    return [ZipMember(name, member) for member in members]


class _Bounded(io.RawIOBase):
    """An inflating stream that stops a decompression bomb (see the module docstring)."""

    def __init__(
        self,
        inner: IO[bytes],
        packed: Callable[[], int],
        name: str | None,
        also: tuple[IO[bytes] | zipfile.ZipFile, ...] = (),
    ) -> None:
        self._inner = inner
        self._packed = packed  # compressed bytes consumed so far
        self._name = name
        self._also = also  # closed with this stream: the archive, the file we opened
        self._out = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._out += n
        if self._out > FLOOR and self._out > RATIO * max(1, self._packed()):
            raise XMLLimitError(
                f"the compressed file inflates more than {RATIO} times its size; "
                "it is not a Green Button download",
                resource=self._name,
            )
        return n

    def close(self) -> None:
        for part in (self._inner, *self._also):
            part.close()
        super().close()


def open_compressed(
    stream: IO[bytes], name: str | None, *, member: str | None = None, owned: bool = False
) -> IO[bytes] | None:
    """``stream`` inflated when it is gzip or a zip (its one XML member, or ``member``);
    None when it is neither. Only the first bytes are read to decide (``peek``/seek).
    Closing the result closes ``stream`` too when ``owned`` (we opened it)."""
    mine: tuple[IO[bytes], ...] = (stream,) if owned else ()
    head = _peek(stream)
    if head.startswith(GZIP_MAGIC):
        inflated = cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
        return io.BufferedReader(_Bounded(inflated, lambda: _position(stream), name, mine))
    if not head.startswith(ZIP_MAGIC):
        return None
    seekable = stream if stream.seekable() else io.BytesIO(stream.read())
    try:
        archive = zipfile.ZipFile(seekable)
    except zipfile.BadZipFile as exc:
        raise ParseError(f"the zip archive is damaged ({exc})", resource=name) from None
    members = _xml_members(archive)
    if member is None:
        if len(members) != 1:
            listed = ", ".join(members[:5]) + (" ..." if len(members) > 5 else "")
            raise ParseError(
                f"the zip archive holds {len(members)} XML files ({listed or 'none'}): give "
                "them one at a time (greenbutton reads each member of a zip named on its "
                "command line; in Python, greenbutton.parse.documents(path))",
                resource=name,
            )
        member = members[0]
    try:
        info = archive.getinfo(member)
    except KeyError:
        archive.close()
        raise ParseError(f"the zip archive has no member {member!r}", resource=name) from None
    inner = archive.open(info)
    return io.BufferedReader(_Bounded(inner, lambda: info.compress_size, name, (archive, *mine)))


def _peek(stream: IO[bytes]) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return bytes(peek(4)[:4])
    if stream.seekable():
        at = stream.tell()
        head = stream.read(4)
        stream.seek(at)
        return head
    return b""  # an unseekable raw stream is read as it is


def _position(stream: IO[bytes]) -> int:
    try:
        return stream.tell()
    except (OSError, ValueError):
        return 0
