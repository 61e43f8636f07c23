"""Utility profiles and credentials (DESIGN 3.5).

A :class:`UtilityProfile` says where a data custodian lives and how it bends the standard
(authorize URL and extra parameters, ``published-min/max`` format, money scale, rate
limit, paging window). :class:`Credentials` hold what the third party was issued; they come
from a config file and environment variables, never from code or command-line values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ._secret import Secret

__all__ = ["PGE", "Credentials", "UtilityProfile"]


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
    window_days: int = 30  # date-window paging of long histories
    max_body_bytes: int = 2 * 1024**3  # cap on one streamed response (R27)
    loopback_redirect_allowed: bool = False  # may the CLI catch the callback on 127.0.0.1

    @property
    def bulk_url(self) -> str:
        return self.resource_url + "/Batch/Bulk"


#: PG&E Share My Data production endpoints (ESPI_NOTES 2.6).
PGE = UtilityProfile(
    name="pge",
    authorize_url="https://sharemydata.pge.com/myAuthorization",
    token_url="https://api.pge.com/datacustodian/oauth/v2/token",  # noqa: S106 - a URL
    resource_url="https://api.pge.com/GreenButtonConnect/espi/1_1/resource",
    published_format="epoch",
    rate_limit_per_s=1.0,
    window_days=28,
)


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
