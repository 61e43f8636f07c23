"""The public surface (STYLE 1, 5; httpx ``test_exported_members``): what ``greenbutton``
exports, where it says it lives, the one exception tree, typed client arguments, and the old
import paths that must keep working."""

from __future__ import annotations

import inspect
import pickle
import re
from pathlib import Path
from typing import Literal, get_args, get_overloads, get_type_hints

import httpx2
import pytest

import greenbutton
from greenbutton import _errors
from greenbutton.client import _base

PUBLIC_ERRORS = [
    name
    for name in _errors.__all__
    if isinstance(getattr(_errors, name), type)
    and issubclass(getattr(_errors, name), Exception)
    and not issubclass(getattr(_errors, name), Warning)
]


def test_all_is_sorted_complete_and_reports_the_package() -> None:
    names = greenbutton.__all__
    assert names == sorted(names)
    public = {n for n in dir(greenbutton) if not n.startswith("_")}
    assert set(names) == {n for n in public if not inspect.ismodule(getattr(greenbutton, n))}
    for name in names:
        obj = getattr(greenbutton, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == "greenbutton", name


def test_every_error_is_exported_in_the_tree_and_drawn_in_the_docstring() -> None:
    """Each class of ``_errors`` is a GreenButtonError, exported from ``greenbutton``, and
    named in the module docstring's drawing (with its parent's indentation above it)."""
    doc = _errors.__doc__ or ""
    drawn = set(re.findall(r"\+- (\w+)", doc)) | {"GreenButtonError"}
    for name in PUBLIC_ERRORS:
        cls = getattr(_errors, name)
        assert issubclass(cls, greenbutton.GreenButtonError), name
        assert getattr(greenbutton, name) is cls, name
        assert name in drawn, name
    assert drawn == set(PUBLIC_ERRORS)
    # __module__ is "greenbutton": pickling finds the class there (our own bytes, not input).
    assert pickle.loads(pickle.dumps(greenbutton.StorageError("x"))).args == ("x",)  # noqa: S301


def test_old_import_paths_give_the_same_classes() -> None:
    from greenbutton.cli._demo import DemoError
    from greenbutton.client._transport import EgressDenied
    from greenbutton.storage import (
        JobRejected,
        ReconciliationError,
        SecretKeyError,
        StorageError,
        TokenDecryptionError,
    )
    from greenbutton.storage._ingest import ReconciliationError as R2
    from greenbutton.storage._store import StorageError as S2
    from greenbutton.storage._tokens import SecretKeyError as K2
    from greenbutton.web._notify import RejectedURI

    assert StorageError is S2 is greenbutton.StorageError
    assert ReconciliationError is R2 and SecretKeyError is K2
    assert issubclass(TokenDecryptionError, StorageError)
    assert issubclass(JobRejected, greenbutton.GreenButtonError)
    assert issubclass(EgressDenied, greenbutton.ConnectError)
    # RejectedURI joined the tree and stays a ValueError for `except ValueError` callers.
    assert issubclass(RejectedURI, greenbutton.GreenButtonError)
    assert issubclass(RejectedURI, ValueError)
    assert issubclass(DemoError, greenbutton.GreenButtonError)


def _keywords(func: object) -> dict[str, object]:
    params = inspect.signature(func).parameters.values()  # type: ignore[arg-type]
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


def test_both_clients_list_the_same_typed_keyword_arguments() -> None:
    """No ``**options``: every argument is named and typed on both clients, with the same
    defaults, and the TypedDicts of ``for_simulator``/``from_config`` name them all."""
    sync, aio = _keywords(greenbutton.Client), _keywords(greenbutton.AsyncClient)
    assert sync == aio and len(sync) == 16
    for cls in (greenbutton.Client, greenbutton.AsyncClient):
        params = inspect.signature(cls).parameters.values()
        assert not [p for p in params if p.kind is p.VAR_KEYWORD]
        hints = get_type_hints(cls.__init__)
        assert set(sync) <= set(hints)
    assert set(greenbutton.ClientOptions.__annotations__) | set(
        _base._Options.__annotations__
    ) == set(sync)
    assert set(get_type_hints(greenbutton.AsyncClientOptions)) == set(sync)


def test_every_public_client_method_has_a_docstring() -> None:
    for cls in (greenbutton.Client, greenbutton.AsyncClient):
        missing = [
            name
            for name, member in inspect.getmembers(cls)
            if not name.startswith("_") and callable(member) and not inspect.getdoc(member)
        ]
        assert missing == [], (cls.__name__, missing)


def test_from_config_builds_a_pge_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README example: a PG&E client from a config file, secret from the environment
    (a mock transport, so the placeholder certificate files are not read)."""
    cert, key = tmp_path / "client.crt.pem", tmp_path / "client.key.pem"
    cert.write_text("placeholder")
    key.write_text("placeholder")
    key.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(
        "default_profile = 'pge'\n"
        "[profile.pge]\n"
        "client_id = '12345'\n"
        "client_secret_env = 'PGE_CLIENT_SECRET'\n"
        f"client_cert = '{cert}'\n"
        f"client_key = '{key}'\n"
    )
    for var in ("GREENBUTTON_PROFILE", "GREENBUTTON_CLIENT_ID", "GREENBUTTON_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PGE_CLIENT_SECRET", "s3cret")
    mock = httpx2.MockTransport(lambda request: httpx2.Response(500))
    with greenbutton.Client.from_config(config, transport=mock, rate_limit_shared=False) as client:
        assert client.profile.name == "pge" and client.profile.rate_limit_per_s == 1.0
        assert client.credentials.client_id == "12345"
        assert client.credentials.client_secret.reveal() == "s3cret"
    profile, creds = greenbutton.load_config(config)
    assert isinstance(creds, greenbutton.Credentials) and profile.token_url.startswith("https")


def test_raw_is_overloaded_on_every_data_method() -> None:
    """Each method taking ``raw`` has the three overloads (Literal[False] -> the parsed type,
    Literal[True] -> bytes, bool -> either), so callers need no ``isinstance`` narrowing;
    ``mypy`` checks the bodies, this checks that no method was left out."""
    for cls in (greenbutton.Client, greenbutton.AsyncClient):
        with_raw = [
            name
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if "raw" in inspect.signature(member).parameters
        ]
        assert len(with_raw) == 15, (cls.__name__, with_raw)
        for name in with_raw:
            overloads = get_overloads(getattr(cls, name))
            raws = [get_type_hints(o)["raw"] for o in overloads]
            assert raws == [Literal[False], Literal[True], bool], (cls.__name__, name)
            returns = [get_type_hints(o)["return"] for o in overloads]
            assert bytes in (returns[1], *get_args(returns[1])), (cls.__name__, name)
