"""``oauth.FileTokenStore``: the file TokenStore moved out of the CLI, usable on its own."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from greenbutton import ConfigurationError
from greenbutton._secret import Secret
from greenbutton.oauth import FileTokenStore, Token, TokenStore

UTILITY = "https://utility.example/DataCustodian/espi/1_1/resource"


def _token(access: str, refresh: str | None = "r1", kind: str = "access") -> Token:
    return Token(
        access_token=Secret(access),
        refresh_token=Secret(refresh) if refresh else None,
        kind=kind,  # type: ignore[arg-type]
        expires_at=1.0e9,
        scope="FB=4_5_15",
        resource_uri=f"{UTILITY}/Subscription/7",
    )


def test_round_trip_is_private_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "new" / "tokens.json"
    store: TokenStore = FileTokenStore(path, UTILITY)  # mypy checks the protocol
    store.save("k", _token("a1"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["tokens.json"]  # no .part left
    again = FileTokenStore(path, UTILITY).load("k")  # a new process reads it back
    assert again is not None and again.access_token.reveal() == "a1"
    assert again.refresh_token is not None and again.refresh_token.reveal() == "r1"
    assert again.scope == "FB=4_5_15" and again.expires_at == 1.0e9
    assert "a1" not in repr(store) and "'k'" in repr(store)


def test_sections_per_utility_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    one, other = FileTokenStore(path, UTILITY), FileTokenStore(path, "https://other.example")
    one.save("k", _token("a1"))
    other.save("k", _token("b1"))
    assert one.load("k").access_token.reveal() == "a1"  # type: ignore[union-attr]
    assert set(json.loads(path.read_text())["tokens"]) == {UTILITY, "https://other.example"}
    one.delete("k")
    assert one.load("k") is None and one.keys() == []
    assert other.keys() == ["k"]
    assert "saved_at" in other.entries()["k"]


def test_client_credentials_stay_in_memory(tmp_path: Path) -> None:
    """R19: the client-credentials token is cached per run, never written."""
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path, UTILITY)
    store.save("client", _token("cc", None, kind="client_credentials"))
    assert store.load("client") is not None
    assert not path.exists()


def test_rotation_from_threads_keeps_every_key(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json", UTILITY)
    threads = [
        threading.Thread(target=store.save, args=(f"k{i}", _token(f"a{i}"))) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.keys() == sorted(f"k{i}" for i in range(8))


def test_a_foreign_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="not a greenbutton token store"):
        FileTokenStore(path, UTILITY).load("k")


def test_the_cli_name_is_the_library_class() -> None:
    from greenbutton.cli import _sdk

    assert _sdk.TokenFile is FileTokenStore
    assert _sdk.default_store_path() == FileTokenStore.default_path()
    assert FileTokenStore.default_path().name == "tokens.json"
