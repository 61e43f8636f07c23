"""The exception tree of greenbutton.

Every error the package raises on purpose is a :class:`GreenButtonError`, so callers (and the
CLI, which turns them into one ``error: ...`` line) can catch one class::

    GreenButtonError
     +- ConfigurationError      bad settings, found before any work starts
     +- ParseError              malformed or unexpected XML: .line, .resource
         +- UnsafeXMLError      DTDs, entities, XInclude: refused by policy (SECURITY R34)
         +- XMLLimitError       depth, text size or element counts above the limits (R36)

Messages say what is wrong, where (line) and what to do; they never quote secrets.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "GreenButtonError",
    "ParseError",
    "UnsafeXMLError",
    "XMLLimitError",
]


class GreenButtonError(Exception):
    """Base class of every error raised by greenbutton."""


class ConfigurationError(GreenButtonError):
    """A setting, path or credential is wrong; raised before any request or parse starts."""


class ParseError(GreenButtonError):
    """A document could not be read as Green Button (Atom/ESPI) XML.

    ``line`` is the 1-based line of the problem when known; ``resource`` names the source
    (a file name or URL) when the caller gave one.
    """

    def __init__(self, message: str, *, line: int | None = None, resource: str | None = None):
        self.message = message
        self.line = line
        self.resource = resource
        super().__init__(message)

    def __str__(self) -> str:
        where = []
        if self.resource:
            where.append(self.resource)
        if self.line is not None:
            where.append(f"line {self.line}")
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class UnsafeXMLError(ParseError):
    """The document uses a feature refused by policy (DOCTYPE, entities, XInclude)."""


class XMLLimitError(ParseError):
    """The document exceeds a safety limit (nesting depth, text size, element counts)."""
