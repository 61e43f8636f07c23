"""Utility profiles and credentials (DESIGN 3.5).

A :class:`UtilityProfile` says where a data custodian lives and how it bends the standard
(authorize URL and extra parameters, ``published-min/max`` format, money scale, rate
limit, paging window). :class:`Credentials` hold what the third party was issued; they come
from a config file and environment variables, never from code or command-line values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .._errors import ConfigurationError
from .._secret import Secret
from ._resources import ApplicationInformation, Document

__all__ = ["PGE", "Credentials", "UtilityProfile", "loopback_literals", "read_registration"]

#: The keys of the simulator's registration.json (DESIGN 3.6) a third party needs.
REGISTRATION_KEYS = (
    "client_id",
    "client_secret",
    "client_cert",
    "client_key",
    "ca_cert",
    "authorize_url",
    "token_url",
    "resource_url",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class UtilityProfile:
    """Endpoints and quirks of one data custodian."""

    name: str
    authorize_url: str
    token_url: str
    resource_url: str  # the ESPI resource endpoint, ".../espi/1_1/resource"
    authorize_params: tuple[tuple[str, str], ...] = ()  # extra query parameters, in order
    scope: str | None = None  # the scope to request (None: the registered default)
    published_format: Literal["epoch", "datetime"] = "datetime"
    cost_scale: int = -5  # exponent of ESPI money fields
    rate_limit_per_s: float | None = None  # client-side limit (PG&E: 1/s, SECURITY R58)
    # Request quotas per client id, counted machine-wide (R58; PG&E: 2,000/h, 20,000/day
    # from 5 pm Pacific); the day resets at (IANA zone, hour) local time, midnight UTC if None.
    quota_per_hour: int | None = None
    quota_per_day: int | None = None
    quota_day_reset: tuple[str, int] | None = None
    window_days: int = 30  # date-window paging of long histories
    max_body_bytes: int = 2 * 1024**3  # cap on one streamed response (R27)
    loopback_redirect_allowed: bool = False  # may the CLI catch the callback on 127.0.0.1
    # May the client connect to loopback, private or link-local addresses? Only a custodian
    # on this machine or network (the simulator) is; everything else must resolve to public
    # addresses only (SECURITY R47, the egress guard in _transport).
    local: bool = False

    @property
    def bulk_url(self) -> str:
        """The ``Batch/Bulk`` collection of this utility's resource endpoint."""
        return self.resource_url + "/Batch/Bulk"

    @classmethod
    def pge(cls) -> UtilityProfile:
        """PG&E Share My Data production endpoints (ESPI_NOTES 2.6)."""
        return PGE

    @classmethod
    def simulator(cls, registration: Path | str | Mapping[str, Any]) -> UtilityProfile:
        """The profile of a running ``greenbutton simulator``, from its ``registration.json``
        (DESIGN 3.6): a path to that file or to the state folder, or the parsed mapping.

        xs:dateTime query parameters; the rate limit the simulator was started with
        (``--rate-limit``, ``rate_limit_per_second``), else none; the CLI may catch the
        callback on loopback; marked ``local``, so the egress guard lets it reach loopback (R47).
        """
        reg = read_registration(registration)
        scope = reg.get("scope")
        limit = reg.get("rate_limit_per_second")  # a simulator run with --rate-limit
        rate = float(limit) if isinstance(limit, int | float) and limit > 0 else None
        return cls(
            name="simulator",
            authorize_url=reg["authorize_url"],
            token_url=reg["token_url"],
            resource_url=reg["resource_url"].rstrip("/"),
            scope=scope if isinstance(scope, str) and scope else None,
            published_format="datetime",
            loopback_redirect_allowed=True,
            local=True,
            rate_limit_per_s=rate,
        )

    @classmethod
    def from_application_information(
        cls, document: ApplicationInformation | Document, *, name: str = "custom"
    ) -> UtilityProfile:
        """A profile from the ESPI ApplicationInformation a custodian returned for the third
        party's registration (its endpoints and registered scope): the parsed resource, or a
        parsed document holding one (``greenbutton.parse(xml)``; the model layer parses
        nothing itself).

        PG&E's hosts (``*.pge.com``) keep the PG&E quirks: epoch-second ``published-min/max``,
        1 request/s, 2,000/h and 20,000/day, 28-day windows, and the customer-facing
        ``sharemydata`` portal as the authorize URL, because the advertised
        ``api.pge.com/.../authorize`` endpoint is not where customers sign in (ESPI_NOTES 2.6).
        """
        if isinstance(document, ApplicationInformation):
            info = document
        elif document.application_information:
            info = document.application_information[0]
        else:
            raise ConfigurationError("the document holds no ApplicationInformation resource")
        authorize_url = (info.authorization_server_authorization_endpoint or "").strip()
        token_url = (info.authorization_server_token_endpoint or "").strip()
        resource_url = (info.data_custodian_resource_endpoint or "").strip().rstrip("/")
        named = {
            "authorizationServerAuthorizationEndpoint": authorize_url,
            "authorizationServerTokenEndpoint": token_url,
            "dataCustodianResourceEndpoint": resource_url,
        }
        missing = [key for key, value in named.items() if not value]
        if missing:
            raise ConfigurationError(
                "ApplicationInformation lacks " + ", ".join(missing) + "; cannot build a profile"
            )
        from .._urls import check_url  # httpx2 parses URLs: loaded only when a URL is checked

        for label, url in (
            ("authorize endpoint", authorize_url),
            ("token endpoint", token_url),
            ("resource endpoint", resource_url),
        ):
            check_url(url, what=f"ApplicationInformation {label}")
        scope = info.scopes[0] if info.scopes else None
        if _is_pge(token_url) or _is_pge(resource_url):
            test = "/test/" in urlsplit(authorize_url).path
            return cls(
                name=name,
                authorize_url=PGE_QA_PORTAL if test else PGE.authorize_url,
                token_url=token_url,
                resource_url=resource_url,
                scope=scope,
                published_format=PGE.published_format,
                rate_limit_per_s=PGE.rate_limit_per_s,
                quota_per_hour=PGE.quota_per_hour,
                quota_per_day=PGE.quota_per_day,
                quota_day_reset=PGE.quota_day_reset,
                window_days=PGE.window_days,
            )
        return cls(
            name=name,
            authorize_url=authorize_url,
            token_url=token_url,
            resource_url=resource_url,
            scope=scope,
        )


#: PG&E Share My Data production endpoints (ESPI_NOTES 2.6).
PGE = UtilityProfile(
    name="pge",
    authorize_url="https://sharemydata.pge.com/myAuthorization",
    token_url="https://api.pge.com/datacustodian/oauth/v2/token",  # noqa: S106 - a URL
    resource_url="https://api.pge.com/GreenButtonConnect/espi/1_1/resource",
    published_format="epoch",
    rate_limit_per_s=1.0,
    quota_per_hour=2000,
    quota_per_day=20000,
    quota_day_reset=("America/Los_Angeles", 17),  # 5 pm Pacific, DST-aware (R58)
    window_days=28,
)


#: PG&E's QA customer portal, for registrations on its test endpoints (ESPI_NOTES 2.6).
PGE_QA_PORTAL = "https://sharemydataqa.pge.com/myAuthorization"


def loopback_literals(*urls: str) -> bool:
    """Every URL's host is a loopback IP literal (``127.0.0.1``, ``[::1]``): a custodian on
    this machine, written as such, so a profile of these URLs may be ``local`` (R47). Names
    such as ``localhost`` do not count: what they resolve to is not the URL's to say."""
    from .._util import is_loopback_ip  # the one loopback rule

    for url in urls:
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            return False
        if not is_loopback_ip(host):
            return False
    return bool(urls)


def _is_pge(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host == "pge.com" or host.endswith(".pge.com")


def read_registration(source: Path | str | Mapping[str, Any]) -> dict[str, Any]:
    """The simulator's ``registration.json`` as a dict, checked for the keys a third party
    needs. ``source`` is the file, its state folder, or an already parsed mapping."""
    if isinstance(source, Mapping):
        reg = dict(source)
        where = "the registration"
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            path = path / "registration.json"
        where = str(path)
        try:
            reg = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(
                f"simulator registration not found: {path} "
                "(start `greenbutton simulator --state-dir DIR` first)"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read simulator registration {path}: {exc}") from None
        if not isinstance(reg, dict):
            raise ConfigurationError(f"{path} is not a simulator registration (not an object)")
    missing = [k for k in REGISTRATION_KEYS if not isinstance(reg.get(k), str) or not reg[k]]
    if missing:
        raise ConfigurationError(f"{where} lacks {', '.join(missing)}")
    return reg


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """What the data custodian issued to the third party."""

    client_id: str
    client_secret: Secret
    client_cert: Path
    client_key: Path
    key_password: Secret | None = None
    ca_cert: Path | None = None  # the custodian's CA bundle (None: the system store)
    redirect_uri: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
