"""Operators of /admin (DESIGN 3.7): scrypt hashes, logins locked after repeated failures
in the database (so every process sees it), sessions that end, and the operator counts
the metrics collector reads; on SQLite and PostgreSQL."""

# ruff: noqa: S105  (fixed test passwords)

from __future__ import annotations

from typing import Any

import pytest

from greenbutton._errors import ConfigurationError
from greenbutton.storage import (
    StorageError,
    StoreCollector,
    add_admin_user,
    admin_logout,
    admin_session,
    check_admin_login,
    create_job,
    fail_job,
    open_jobs,
    retry_job,
)
from greenbutton.storage._admin import LOCK_AFTER, hash_password, verify_password

PASSWORD = "correct horse battery"


def test_hash_is_salted_scrypt_and_verifies() -> None:
    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one != two and one.startswith("scrypt$17$8$1$")  # OWASP's scrypt minimum
    assert PASSWORD not in one
    assert verify_password(PASSWORD, one) and not verify_password(PASSWORD + "x", one)
    assert not verify_password(PASSWORD, "plain-text")
    assert not verify_password(PASSWORD, one.replace("$17$", "$40$"))  # no absurd costs


def test_login_lockout_and_sessions(store: Any) -> None:
    assert add_admin_user(store, "ops", PASSWORD)
    with pytest.raises(ConfigurationError, match="exists"):
        add_admin_user(store, "ops", PASSWORD)
    with pytest.raises(ConfigurationError, match="at least 12"):
        add_admin_user(store, "short", "12345")

    now = 1_800_000_000.0
    assert check_admin_login(store, "nobody", PASSWORD, now=now).session is None
    for _ in range(LOCK_AFTER - 1):
        assert check_admin_login(store, "ops", "wrong", now=now).session is None
    locked = check_admin_login(store, "ops", "wrong", now=now)
    assert locked.session is None and locked.retry_after == pytest.approx(900)
    # locked: even the right password is refused until the lock ends
    assert check_admin_login(store, "ops", PASSWORD, now=now + 10).retry_after is not None
    ok = check_admin_login(store, "ops", PASSWORD, now=now + 901)
    assert ok.session and ok.name == "ops"
    again = check_admin_login(store, "ops", PASSWORD, now=now + 902)
    assert again.session != ok.session  # a login always makes a new session

    assert admin_session(store, ok.session, idle=60, lifetime=3600, now=now + 950) == "ops"
    assert admin_session(store, ok.session, idle=60, lifetime=3600, now=now + 1011) is None
    assert again.session
    admin_logout(store, again.session)
    assert admin_session(store, again.session, idle=60, lifetime=3600, now=now + 903) is None

    # a new password ends every session of that operator
    third = check_admin_login(store, "ops", PASSWORD, now=now + 904)
    assert third.session
    assert not add_admin_user(store, "ops", PASSWORD + "!", replace=True)
    assert admin_session(store, third.session, idle=60, lifetime=3600, now=now + 905) is None


def test_collector_counts_jobs_and_open_jobs_show_reasons(store: Any) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    first = create_job(store, "https://dc.example/espi/1_1/resource/Batch/Subscription/1")
    create_job(store, "https://dc.example/espi/1_1/resource/Batch/Subscription/2")
    fail_job(store, first, "HTTPStatusError: 503 from the custodian")
    registry = CollectorRegistry()
    registry.register(StoreCollector(store))
    text = generate_latest(registry).decode()
    assert 'greenbutton_jobs{state="failed"} 1.0' in text
    assert 'greenbutton_jobs{state="pending"} 1.0' in text
    assert 'greenbutton_jobs{state="abandoned"} 0.0' in text
    assert "greenbutton_database_up 1.0" in text
    assert "greenbutton_revocations_owed 0.0" in text

    jobs = open_jobs(store)
    assert [j.state for j in jobs] == ["failed", "pending"]
    assert jobs[0].error == "HTTPStatusError: 503 from the custodian"
    assert retry_job(store, first) and not retry_job(store, first)
    assert {j.state for j in open_jobs(store)} == {"pending"}

    class Gone:  # the database unreachable: the scrape still answers, saying so
        def connect(self) -> Any:
            raise StorageError("connection refused")

    down = CollectorRegistry()
    down.register(StoreCollector(Gone()))  # type: ignore[arg-type]
    text = generate_latest(down).decode()
    assert "greenbutton_database_up 0.0" in text and "greenbutton_jobs{" not in text
