"""First start (and every later start) of a simulator state folder.

The folder holds everything a restart must keep so a third party configured once keeps
working: the PKI (``_pki``), the registration and the customers (``state.json``, 0600, it
holds the client secret and the demo passwords) and ``meta.json`` (the seed the customers came
from, whether the secrets were made for a network bind, the server key kind last asked for
with ``--server-key``). Grants and tokens are not kept: a restarted simulator is a utility
that forgot its sessions.

Customers are deterministic from ``--seed`` (names, ids, usage points) so tests and demos
can rely on them; their passwords are random and stored, never derived from the seed.

Safety (SECURITY R69): a non-loopback host is refused unless ``allow_insecure_bind``; and a
state folder whose secrets were created for a loopback bind is never reused on the network,
since those secrets may have been printed, committed or shared as harmless.
"""

from __future__ import annotations

import dataclasses
import json
import random
import secrets
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._errors import ConfigurationError
from .._util import is_loopback_host, write_private_json
from ._config import PATHS, ServerKey, SimulatorConfig
from ._pki import LOOPBACK_NAMES, PKIFiles, ensure_pki
from ._simulator import Simulator
from ._state import (
    Customer,
    Registration,
    SimulatorState,
    UsagePointSpec,
    new_id,
    new_secret,
)

__all__ = ["bootstrap", "demo_customer", "is_loopback"]

STATE_FILE = "state.json"
GRANTS_FILE = "grants.json"  # the customers' consents, kept across restarts
META_FILE = "meta.json"
MAX_CUSTOMERS = 100_000

_NAMES = (
    ("alice", "Alice Anderson"),
    ("bob", "Bob Baker"),
    ("carol", "Carol Castillo"),
    ("dave", "Dave Dubois"),
    ("erin", "Erin Eriksen"),
    ("frank", "Frank Fischer"),
    ("grace", "Grace Gupta"),
    ("heidi", "Heidi Hoffmann"),
    ("ivan", "Ivan Ivanov"),
    ("judy", "Judy Jones"),
)
_PROFILES = ("electric_15min", "electric_hourly", "solar_net", "gas_daily")
#: Is the bind host loopback? ``_util``'s one test (``localhost`` counts: we resolve it).
is_loopback = is_loopback_host
# The first customers show every kind of data, so a 3-customer demo covers all profiles.
_FIXED: tuple[tuple[tuple[str, bool], ...], ...] = (
    (("electric_15min", True), ("gas_daily", False)),
    (("solar_net", True),),
    (("electric_hourly", False), ("gas_daily", True)),
    (("electric_15min", False), ("electric_hourly", True), ("solar_net", False)),
)


def demo_customer(seed: int, index: int, taken: set[str] | None = None) -> Customer:
    """Customer number ``index`` of the seeded population (password freshly random).

    ``taken`` collects the ids already handed out so no two customers share one.
    """
    taken = set() if taken is None else taken
    # Seeded on purpose: demo data must repeat; no secret is drawn from this generator.
    rng = random.Random(f"greenbutton-simulator:{seed}:{index}")  # noqa: S311

    def opaque_id() -> str:
        while True:
            value = str(rng.randrange(10**11, 10**12))
            if value not in taken:
                taken.add(value)
                return value

    if index < len(_NAMES):
        username, name = _NAMES[index]
    else:
        username, name = f"customer{index + 1:03d}", f"Customer {index + 1}"
    if index < len(_FIXED):
        kinds = _FIXED[index]
    else:
        picked = rng.sample(_PROFILES, rng.choice((1, 1, 2, 2, 3)))
        kinds = tuple((p, rng.random() < 0.4) for p in picked)
    retail_customer_id = opaque_id()
    subscription_id = opaque_id()
    usage_points = tuple(
        UsagePointSpec(
            id=opaque_id(),
            profile=profile,  # type: ignore[arg-type]  # drawn from _PROFILES
            with_cost=with_cost,
            seed=rng.randrange(2**31),
        )
        for profile, with_cost in kinds
    )
    return Customer(
        username=username,
        password=secrets.token_urlsafe(12),
        retail_customer_id=retail_customer_id,
        subscription_id=subscription_id,
        usage_points=usage_points,
        name=name,
    )


def _population(seed: int, count: int, existing: list[Customer]) -> list[Customer]:
    """``existing`` extended to ``count`` customers with the seeded ones that follow."""
    customers = list(existing)
    taken = {c.retail_customer_id for c in customers} | {c.subscription_id for c in customers}
    taken |= {u.id for c in customers for u in c.usage_points}
    names = {c.username for c in customers}
    index = 0
    while len(customers) < count:
        customer = demo_customer(seed, index, taken)
        index += 1
        if customer.username not in names:
            customers.append(customer)
            names.add(customer.username)
    return customers


def _third_party_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"--third-party-url must be an http(s) URL with a host, got {url!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"--third-party-url must not carry a query or fragment: {url!r}")
    if "@" in parts.netloc:  # the URL policy: never a user name or password (issue 13.4)
        raise ConfigurationError("--third-party-url must not carry a user name or password")
    return url.rstrip("/")


def _notification_path(path: str) -> str:
    parts = urlsplit(path)
    if (
        not path.startswith("/")
        or path.startswith("//")
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in path)
    ):
        raise ConfigurationError(
            f"--notification-path must be a path on the third party's site starting with '/' "
            f"(no query, fragment or spaces), e.g. {PATHS.THIRD_PARTY_NOTIFY}; got {path!r}"
        )
    return path


def _new_registration(base: str, notification_path: str) -> Registration:
    return Registration(
        client_id=secrets.token_hex(16),
        client_secret=new_secret(32),
        redirect_uri=base + PATHS.THIRD_PARTY_REDIRECT,
        notification_uri=base + notification_path,
        bulk_id=new_id(),
        registration_access_token=new_secret(32),
        application_information_id=new_id(),
    )


def _server_names(host: str) -> list[str]:
    names = list(LOOPBACK_NAMES)
    bare = host.strip("[]")
    if bare in ("0.0.0.0", "::", ""):  # noqa: S104  (all interfaces: add this machine's name)
        names.append(socket.gethostname())
    elif bare not in names:
        names.append(bare)
    return names


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"{path} is unreadable ({exc}); delete the state folder to start afresh"
        ) from exc
    return data if isinstance(data, dict) else None


def _load_state(path: Path) -> SimulatorState | None:
    if not path.exists():
        return None
    try:
        return SimulatorState.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"{path} is not a simulator state file ({type(exc).__name__}: {exc}); "
            "delete the state folder to start afresh"
        ) from exc


def bootstrap(config: SimulatorConfig) -> Simulator:
    """Create or reuse the state folder of ``config`` and return the shared Simulator.

    Raises ConfigurationError for settings the simulator must not run with.
    """
    network = not is_loopback(config.host)
    if network and not config.allow_insecure_bind:
        raise ConfigurationError(
            f"refusing to listen on {config.host!r}: it is not a loopback address and the "
            "simulator is a test utility; pass --allow-non-loopback to do it anyway "
            "(fresh secrets are generated for that)"
        )
    if not 1 <= config.customers <= MAX_CUSTOMERS:
        raise ConfigurationError(f"--customers must be between 1 and {MAX_CUSTOMERS}")
    if config.data_dir is not None and not config.data_dir.is_dir():
        raise ConfigurationError(f"--data must be a folder of ESPI files: {config.data_dir}")
    base = _third_party_url(config.third_party_url)
    notification_path = _notification_path(config.notification_path)

    state_dir = config.state_dir.expanduser()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir = state_dir.resolve()
    state_path = state_dir / STATE_FILE
    meta_path = state_dir / META_FILE

    meta = _read_json(meta_path) or {}
    stored = _load_state(state_path)
    fresh = network and not meta.get("network", False)
    if fresh:
        stored = None  # R69: secrets made for loopback never serve a network bind

    if stored is None:
        registration = _new_registration(base, notification_path)
        known: list[Customer] = []
    else:
        registration = dataclasses.replace(
            stored.registration,
            redirect_uri=base + PATHS.THIRD_PARTY_REDIRECT,
            notification_uri=base + notification_path,
        )
        same_seed = meta.get("seed") == config.seed
        known = list(stored.customers.values()) if same_seed else []
    customers = _population(config.seed, config.customers, known)

    # --server-key, else the kind this folder was told before (an EC key without that
    # record is an older version's, re-issued as RSA for GBA TC008)
    server_key: ServerKey = config.server_key or (
        "ec" if meta.get("server_key") == "ec" and not fresh else "rsa"
    )
    pki: PKIFiles = ensure_pki(
        state_dir,
        server_names=_server_names(config.host),
        client_name=f"greenbutton third party {registration.client_id}",
        fresh=fresh,
        server_key=server_key,
    )
    # Everything ever generated is kept (a smaller --customers later keeps the passwords).
    SimulatorState(registration, customers).save(state_path)
    _write_meta(
        meta_path,
        seed=config.seed,
        network=network or bool(meta.get("network")),
        server_key=server_key,
    )

    state = SimulatorState(registration, customers[: config.customers])
    if stored is not None:  # a fresh registration voids the consents given to the old one
        state.load_grants(state_dir / GRANTS_FILE)
    else:
        (state_dir / GRANTS_FILE).unlink(missing_ok=True)
        state.grants_file = state_dir / GRANTS_FILE
    if config.auto_approve is not None and config.auto_approve not in state.customers:
        raise ConfigurationError(
            f"--auto-approve {config.auto_approve!r} is not a customer; "
            f"try one of: {', '.join(list(state.customers)[:5])}"
        )
    return Simulator(
        config=config,
        state=state,
        faults=dataclasses.replace(config.faults),
        ca_cert=pki.ca_cert,
        server_cert=pki.server_cert,
        server_key=pki.server_key,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
    )


def _write_meta(path: Path, *, seed: int, network: bool, server_key: ServerKey) -> None:
    write_private_json(
        path, {"format": 1, "seed": seed, "network": network, "server_key": server_key}
    )
