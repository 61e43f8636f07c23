"""Browser sessions kept server-side: a random id in a signed cookie, the rest in memory.

The cookie carries only the session id (256 random bits, signed so a forged or truncated
id is dropped before any lookup); the pending authorization (state + PKCE verifier, R01,
R03), the CSRF token and which accounts this browser connected stay on the server, so no
token or verifier ever reaches the browser (R51). One pending flow per session: a new
``/connect`` replaces the old one, and a callback consumes it whatever the outcome (R01).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from itsdangerous import BadSignature, TimestampSigner

from ..oauth import AuthorizationRequest

__all__ = ["COOKIE_NAME", "Session", "Sessions"]

COOKIE_NAME = "gb_session"


@dataclass(slots=True)
class Session:
    """What the server remembers about one browser."""

    id: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    pending: AuthorizationRequest | None = None
    accounts: list[str] = field(default_factory=list)  # token-store keys, in connect order
    seen: float = field(default_factory=time.time)

    def csrf_ok(self, value: str | None) -> bool:
        """Constant-time comparison with the form's token."""
        return value is not None and hmac.compare_digest(value.encode(), self.csrf.encode())


class Sessions:
    """Sessions by id, least recently used dropped first beyond ``max_sessions``."""

    def __init__(self, key: bytes, *, max_age: float = 7 * 86400, max_sessions: int = 10_000):
        self._signer = TimestampSigner(key, salt="greenbutton.web.session")
        self.max_age = max_age
        self._max = max_sessions
        self._items: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, cookie: str | None) -> Session | None:
        """The live session named by a cookie value, or None (bad signature, expired, gone)."""
        if not cookie or len(cookie) > 512:
            return None
        try:
            sid = self._signer.unsign(cookie, max_age=int(self.max_age)).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
        with self._lock:
            session = self._items.get(sid)
            if session is not None:
                session.seen = time.time()
                self._items.move_to_end(sid)
            return session

    def create(self) -> tuple[Session, str]:
        """A new session and its signed cookie value."""
        session = Session(id=secrets.token_urlsafe(32))
        with self._lock:
            self._items[session.id] = session
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return session, self._signer.sign(session.id).decode()
