"""The vocabulary of sans-IO flows (STYLE 2): what a flow may yield and what it is sent.

A flow is a generator that yields :class:`httpx2.Request`, :class:`Download`, :class:`Lock`
or :class:`Unlock` steps and is sent the answer to each; it never touches a socket. The flows
themselves live in :mod:`._operations`; the drivers that run them (the only code that sends)
live one layer up, in ``client/_flows``. Keeping the vocabulary here lets ``espi/`` sit below
``client/`` (the client runs espi's flows; espi knows nothing of the drivers).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import httpx2

__all__ = ["REQUEST_DEADLINE", "Download", "Downloaded", "Flow", "Lock", "Step", "Unlock"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Lock:
    """Flow step: take the named lock (blocks other flows of the same client)."""

    name: str


@dataclass(frozen=True, slots=True)
class Unlock:
    """Flow step: release a named lock taken with :class:`Lock`."""

    name: str


@dataclass(frozen=True, slots=True)
class Download:
    """Flow step: send ``request``; the flow is sent a :class:`Downloaded`, its 2xx body
    streamed into a spooled temporary file (R27). Retries, rate limit and deadline apply as
    for a plain request."""

    request: httpx2.Request


class Downloaded:
    """The answer to a :class:`Download`.

    ``response`` has the status and headers. A non-2xx body (an error page, used for the
    message and the retry decision) is read into ``response.content`` as usual, under the
    cap; a 2xx body is in ``file`` instead (rewound, ``response.content`` is empty), which
    holds ``size`` decoded bytes. Close it when done (``with`` works); closing twice is fine.
    """

    __slots__ = ("file", "response", "size")

    def __init__(self, response: httpx2.Response, file: IO[bytes] | None, size: int) -> None:
        self.response = response
        self.file = file
        self.size = size

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def on_disk(self) -> bool:
        """Did the body outgrow the in-memory part of the spool?"""
        return bool(getattr(self.file, "_rolled", False))

    def read(self) -> bytes:
        """The whole body as bytes (``raw=True`` callers asked for exactly that)."""
        if self.file is None:
            return self.response.content
        self.file.seek(0)
        return self.file.read()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def __enter__(self) -> Downloaded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Downloaded {self.response.status_code} {self.size} bytes>"


Step = httpx2.Request | Download | Lock | Unlock
#: A flow: yields steps, is sent the Response of each Request, the Downloaded of each
#: Download (None after Lock/Unlock).
Flow = Generator[Step, Any, T]


#: Request extension: seconds this one request may take, retries included, when that is
#: less than the operation has left (a token refresh holding a database lock).
REQUEST_DEADLINE = "greenbutton.deadline"
