"""Signing out (``Sessions.end``) on each database back end: the row goes, so the cookie
and any copy of it open nothing, another browser's session is untouched, and ending an
ended session says so instead of failing."""

from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet

from greenbutton.storage import Store
from greenbutton.web._sessions import Sessions


def test_end_deletes_only_that_session(store_url: str) -> None:
    with Store.open(store_url) as store:
        sessions = Sessions(store, MultiFernet([Fernet(Fernet.generate_key())]), b"k" * 32)
        mine, cookie = sessions.create()
        rotated = sessions.add_account(mine.id, "utility/Subscription/1")
        assert rotated is not None
        mine, cookie = rotated
        other, other_cookie = sessions.create()
        assert sessions.end(mine.id) is True
        assert sessions.get(cookie) is None
        assert sessions.end(mine.id) is False  # already gone: nothing to do, no error
        assert sessions.rotate(mine.id, lambda s: None) is None
        still = sessions.get(other_cookie)
        assert still is not None and still.id == other.id
