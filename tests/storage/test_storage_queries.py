"""``storage._queries``: the queries the front ends used to write against the schema, on
both back ends (they now depend on these names, not on ``_schema``)."""

from __future__ import annotations

import time
from pathlib import Path

from greenbutton import parse
from greenbutton._secret import Secret
from greenbutton.oauth import Token
from greenbutton.storage import (
    DatabaseTokenStore,
    Store,
    authorization_id,
    authorization_points,
    authorization_versions,
    ingest_document,
    ingest_file,
    jobs_since,
    last_reading_start,
    latest_authorization,
    local_time_of,
    reading_count,
    time_zone_of,
    web_session_delete_expired,
    web_session_delete_if,
    web_session_get,
    web_session_insert,
    web_session_replace_if,
)
from tests.conftest import FIXTURES

GAS = FIXTURES / "gba_gas_monthly_therm.xml"
PGE = FIXTURES / "pge_smd_bulk_day_2019-10-16.xml"
KEY = "https://utility.example/espi/1_1/resource/Subscription/4095251"


def _grant(store: Store) -> int:
    DatabaseTokenStore(store).save(
        KEY,
        Token(
            access_token=Secret("a"),
            refresh_token=Secret("r"),
            kind="access",
            resource_uri="https://utility.example/espi/1_1/resource/Subscription/4095251",
        ),
    )
    found = authorization_id(store, KEY)
    assert found is not None
    return found


def test_account_page_queries(store_url: str, secret_key: str, tmp_path: Path) -> None:
    since = time.time() - 1
    with Store.open(store_url, data_dir=tmp_path) as store:
        assert latest_authorization(store) is None and reading_count(store) == 0
        auth = _grant(store)
        assert latest_authorization(store) == KEY
        assert set(authorization_versions(store)) == {KEY}
        ingest_document(store, parse(PGE), namespace="u", authorization_id=auth)
        ingest_file(store, GAS)
        assert reading_count(store) == 48 + 13

        status, points = authorization_points(store, KEY, "u") or ("", [])
        assert status == "active"
        (point,) = points
        assert point.key == "Subscription/4095251/UsagePoint/5391320451"
        assert point.readings == 48
        assert point.first is not None and point.last == point.first + 48 * 3600
        assert last_reading_start(store, "u", point.key) == point.last - 3600
        assert authorization_points(store, KEY, "other") == ("active", [])
        assert authorization_points(store, "no-such-key", "u") is None
        assert last_reading_start(store, "other", point.key) is None

        tz, label = time_zone_of(local_time_of(store, "u", point.key))
        assert label and tz is not None
        assert local_time_of(store, "u", "no/such/point") is None
        assert [state for state, _ in jobs_since(store, since)] == ["done"]  # the file's job
        assert jobs_since(store, time.time() + 60) == []


def test_web_session_compare_and_swap(store_url: str, secret_key: str, tmp_path: Path) -> None:
    with Store.open(store_url, data_dir=tmp_path) as store:
        with store.begin() as conn:
            web_session_insert(conn, "h", b"one", 100.0)
            web_session_insert(conn, "old", b"x", 10.0)
        with store.begin() as conn:
            assert web_session_get(conn, "h") == (b"one", 100.0)
            assert web_session_get(conn, "h", seen_after=100.0) is None  # idle bound
            assert not web_session_replace_if(conn, "h", b"stale", b"two", seen_at=101.0)
            assert web_session_replace_if(conn, "h", b"one", b"two", seen_at=101.0)
            assert web_session_get(conn, "h", seen_after=100.5) == (b"two", 101.0)
            assert not web_session_delete_if(conn, "h", b"one")
            assert web_session_delete_expired(conn, seen_after=50.0, created_after=0.0) == 1
            assert web_session_get(conn, "old") is None
            assert web_session_delete_if(conn, "h", b"two")
            assert web_session_get(conn, "h") is None
