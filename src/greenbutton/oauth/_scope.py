"""The Green Button scope string (ESPI_NOTES 2.3).

An ESPI scope is *one* OAuth scope token (RFC 6749 3.3) made of ``;``-separated
``key=value`` pairs, e.g. ``FB=1_3_4_5_13_14;IntervalDuration=900_3600;BlockDuration=Daily;``.
Data custodians disagree on case, spacing and trailing ``;``, so parsing is tolerant and the
original text is kept: it is what goes back to the server, byte for byte (R17).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Scope", "format_scope", "parse_scope"]


@dataclass(frozen=True, slots=True)
class Scope:
    """A parsed ESPI scope. ``text`` is the original string (send that, not a re-rendering).

    ``params`` keeps every piece in order with keys verbatim; a piece without ``=`` (PG&E's
    legacy bare subscription id, ``'38475'``) has the value None. ``function_blocks`` is the
    ``FB`` list as a set of ints (pieces that are not numbers are skipped, the text keeps them).
    """

    text: str
    params: tuple[tuple[str, str | None], ...] = ()
    function_blocks: frozenset[int] = frozenset()

    def get(self, key: str) -> str | None:
        """The value of the first ``key`` (exact case), or None."""
        for name, value in self.params:
            if name == key:
                return value
        return None

    def get_int(self, key: str) -> int | None:
        """An integer parameter such as ``HistoryLength`` or ``AccountCollection``."""
        value = self.get(key)
        return int(value) if value is not None and value.isdecimal() else None

    @property
    def interval_durations(self) -> tuple[int, ...]:
        """``IntervalDuration`` seconds, e.g. ``900_3600`` -> (900, 3600)."""
        return _numbers(self.get("IntervalDuration"))

    @property
    def block_duration(self) -> str | None:
        return self.get("BlockDuration")

    @property
    def history_length(self) -> int | None:
        """Seconds at PG&E (63072000 = 2 years); some sandboxes use months (ESPI_NOTES 2.3)."""
        return self.get_int("HistoryLength")

    @property
    def bulk_id(self) -> str | None:
        """``BR``: the ``{bulkId}`` of ``Batch/Bulk`` for bulk scopes."""
        return self.get("BR")

    def __str__(self) -> str:
        return self.text


def _numbers(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    return tuple(int(part) for part in value.split("_") if part.strip().isdecimal())


def parse_scope(text: str) -> Scope:
    """Parse an ESPI scope: split on ``;``, drop empty pieces and surrounding spaces, split
    each piece on its first ``=`` (the XSD's own example has ``HistoryLength= 34128000``).

    Never raises on content: the scope comes from servers and is informational; what the
    server granted is kept verbatim in ``text`` (R17).
    """
    params: list[tuple[str, str | None]] = []
    for piece in text.split(";"):
        piece = piece.strip()
        if not piece:
            continue
        key, sep, value = piece.partition("=")
        params.append((key.strip(), value.strip() if sep else None))
    fb: set[int] = set()
    for name, fb_value in params:
        if name == "FB":
            fb.update(_numbers(fb_value))
    return Scope(text, tuple(params), frozenset(fb))


def format_scope(params: Iterable[tuple[str, str | None]], *, trailing: bool = False) -> str:
    """Render pairs as an ESPI scope (``key=value;...``); ``trailing`` adds the final ``;``
    that PG&E writes. ``parse_scope(format_scope(p)).params == p`` for clean pairs."""
    pieces = []
    for key, value in params:
        clean_key = bool(key) and key == key.strip() and not set(key) & {";", "="}
        clean_value = value is None or (value == value.strip() and ";" not in value)
        if not (clean_key and clean_value):
            raise ValueError(f"not a valid scope parameter: {key!r}={value!r}")
        pieces.append(key if value is None else f"{key}={value}")
    return ";".join(pieces) + (";" if trailing and pieces else "")
