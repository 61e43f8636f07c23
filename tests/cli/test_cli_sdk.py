"""``greenbutton status``, ``authorize`` and ``fetch`` against the real mTLS simulator
(auto-approve for alice), with Click's runner; the loopback listener of SECURITY R12 and
the token store of R50."""

from __future__ import annotations

import csv
import io
import json
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner, Result

from greenbutton import parse
from greenbutton.cli import _sdk, cli
from tests.simulator_harness import SimulatorHandle, start_simulator
from tests.worker_harness import free_port


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[SimulatorHandle]:
    url = f"http://127.0.0.1:{free_port()}"
    with start_simulator(
        tmp_path / "sim", auto_approve="alice", customers=2, third_party_url=url
    ) as handle:
        yield handle


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


class FakeBrowser:
    """Stands in for ``webbrowser.open``: follows the authorize URL to the redirect (the
    simulator approves at once) and delivers it to the CLI's listener, from a thread."""

    def __init__(self, gb: SimulatorHandle) -> None:
        self.gb = gb
        self.callback: str | None = None
        self.answer: int | None = None
        self.thread: threading.Thread | None = None

    def __call__(self, url: str) -> bool:
        def go() -> None:
            with self.gb.portal_client() as browser:
                r = browser.get(url)
            self.callback = r.headers["location"]
            with httpx2.Client(trust_env=False, timeout=10) as plain:
                plain.get(self.callback.replace("/OAuthCallback", "/favicon.ico"))
                self.answer = plain.get(self.callback).status_code

        self.thread = threading.Thread(target=go)
        self.thread.start()
        return True


def authorize(gb: SimulatorHandle, store: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    browser = FakeBrowser(gb)
    monkeypatch.setattr(_sdk.webbrowser, "open", browser)
    result = run(
        "authorize", "--simulator", str(gb.state_dir), "--store", str(store), "--open",
        "--timeout", "20",
    )  # fmt: skip
    assert browser.thread is not None
    browser.thread.join(10)
    assert result.exit_code == 0, result.output
    assert browser.answer == 200
    out = dict(line.split(": ", 1) for line in result.stdout.splitlines()[1:])
    assert out["authorization"].startswith("simulator/Subscription/")  # its identity (3.7)
    assert out["subscription"] != "-"
    # R12: one flow only; the listener is closed afterwards.
    assert browser.callback is not None
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(browser.callback, trust_env=False, timeout=5)
    return out["authorization"]


def test_status(gb: SimulatorHandle) -> None:
    result = run("status", "--simulator", str(gb.state_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout == "available\n"


def test_status_unavailable(gb: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    from greenbutton.models._resources import ServiceStatus

    monkeypatch.setattr(
        _sdk.Client, "service_status", lambda self, **kw: ServiceStatus(current_status=0)
    )
    result = run("status", "--simulator", str(gb.state_dir))
    assert result.exit_code == 1
    assert result.stdout == "unavailable\n"


def test_authorize_with_listener_then_fetch_csv_and_xml(
    gb: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "state" / "tokens.json"
    key = authorize(gb, store, monkeypatch)

    # R50: 0600, tokens only, never the client secret.
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    text = store.read_text()
    assert gb.registration["client_secret"] not in text
    entry = json.loads(text)["tokens"][gb.registration["resource_url"].rstrip("/")][key]
    assert entry["kind"] == "access" and entry["access_token"] and entry["refresh_token"]
    assert not list(store.parent.glob("*.part"))

    common = ("--simulator", str(gb.state_dir), "--store", str(store))
    out_csv = tmp_path / "usage.csv"
    result = run("fetch", *common, "-o", str(out_csv))
    assert result.exit_code == 0, result.output
    assert "usage point 1/" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert rows
    points = {r["usage_point"] for r in rows}
    assert all(p.startswith("Subscription/") and "/UsagePoint/" in p for p in points)
    assert {r["meter_reading"] for r in rows}
    # A 7-day window of daily blocks: every start within it.
    starts = sorted(r["start"] for r in rows)
    assert starts[0] < starts[-1]

    out_xml = tmp_path / "usage.xml"
    result = run("fetch", *common, "--authorization", key, "-o", str(out_xml))
    assert result.exit_code == 0, result.output
    doc = parse(out_xml)
    assert len(doc.usage_points) == len(points)
    assert doc.reading_count == len(rows)

    result = run("fetch", *common, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == len(rows)


def test_authorize_with_callback_url(gb: SimulatorHandle, tmp_path: Path) -> None:
    store = tmp_path / "tokens.json"
    common = ("--simulator", str(gb.state_dir), "--store", str(store))
    result = run("authorize", *common, "--no-listen")
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    pending = store.with_name(store.name + ".pending")
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    with gb.portal_client() as browser:
        callback = browser.get(url).headers["location"]

    # A callback for another flow (wrong state) is refused, and the pending flow is used up.
    bad = callback.replace("state=", "state=x")
    result = run("authorize", *common, "--callback-url", bad)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "state" in result.stderr
    result = run("authorize", *common, "--callback-url", callback)
    assert result.exit_code == 1 and "no authorization is pending" in result.stderr

    result = run("authorize", *common, "--no-listen")
    with gb.portal_client() as browser:
        callback = browser.get(result.stdout.strip()).headers["location"]
    result = run("authorize", *common, "--callback-url", "-", input=callback + "\n")
    assert result.exit_code == 0, result.output
    assert "authorization: " in result.stdout
    assert not pending.exists()
    assert gb.registration["client_secret"] not in store.read_text()

    result = run("fetch", *common, "--start", "2024-01-01", "--end", "2024-01-03")
    assert result.exit_code == 0, result.output


def test_listener_times_out_cleanly(gb: SimulatorHandle, tmp_path: Path) -> None:
    store = tmp_path / "tokens.json"
    result = run(
        "authorize", "--simulator", str(gb.state_dir), "--store", str(store), "--timeout", "0.3"
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("error: no redirect arrived within 0.3 s")
    assert not store.exists()


def test_listener_binds_loopback_only(gb: SimulatorHandle) -> None:
    """The library's listener (used by authorize) binds the loopback IP literal of the
    redirect URI, nothing wider, and frees the port on the way out (R12)."""
    from greenbutton.client._loopback import LoopbackCallback
    from greenbutton.oauth import authorization_request

    port = int(gb.registration["redirect_uri"].split(":")[2].split("/")[0])
    pending = authorization_request(
        _sdk.UtilityProfile.simulator(gb.state_dir), "c", gb.registration["redirect_uri"]
    )
    with LoopbackCallback(pending) as listener:
        assert listener.server_address == ("127.0.0.1", port)
        assert listener.path == "/OAuthCallback"
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--simulator", ".", "--profile", "pge"),
        ("authorize", "--simulator", ".", "--config", "x.toml"),
        ("authorize", "--simulator", "SIM", "--callback-url", "http://x/", "--open"),
        ("authorize", "--simulator", "SIM", "--timeout", "0"),
        ("fetch", "--simulator", "SIM", "--start", "2024-02-01", "--end", "2024-01-01"),
        ("fetch", "--simulator", "SIM", "--format", "parquet"),
        ("fetch", "--simulator", "SIM", "--start", "yesterday"),
        ("fetch", "--simulator", "SIM", "--format", "pdf"),
    ],
)
def test_bad_option_combinations_are_usage_errors(
    gb: SimulatorHandle, args: tuple[str, ...]
) -> None:
    args = tuple(str(gb.state_dir) if a == "SIM" else a for a in args)
    result = run(*args)
    assert result.exit_code == 2, (args, result.output)


def test_no_stored_authorization_is_one_line(gb: SimulatorHandle, tmp_path: Path) -> None:
    result = run("fetch", "--simulator", str(gb.state_dir), "--store", str(tmp_path / "t.json"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no stored authorization")
    assert result.stderr.count("\n") == 1
