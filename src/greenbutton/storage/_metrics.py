"""What the database says about the work, as Prometheus metrics (DESIGN 3.7 ``/metrics``).

A custom collector rather than gauges set by the code that changes the state: the state is
shared by every process on the database (sync, web workers, ``greenbutton worker`` on other
machines), so the only true count is the database's, read when Prometheus scrapes. Each
scrape is two indexed GROUP BY queries (``storage.job_counts``, ``authorization_counts``)
and a count of the owed revocations.

Series: ``greenbutton_jobs{state}`` (every state, 0 when none),
``greenbutton_authorizations{status}``, ``greenbutton_revocations_owed`` and
``greenbutton_database_up`` (1, or 0 when the queries failed: the scrape still answers, so
an outage shows as a value instead of a gap).

``prometheus_client`` (the ``web`` and ``workers`` extras) is imported when a scrape
collects, not when storage is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..client import certificate_expiry, client_limits
from ..models import Credentials
from ._queries import authorization_counts, job_counts, revocations_owed
from ._store import Store

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["JOB_STATES", "ClientCollector", "StoreCollector"]

log = logging.getLogger("greenbutton.storage")

#: Every state a job can be in (``_jobs``): each gets a series, 0 when empty.
JOB_STATES = ("pending", "running", "failed", "abandoned", "done")
_STATUSES = ("active", "reauth_required")


class StoreCollector:
    """A Prometheus collector over ``store``: register it with a ``CollectorRegistry``
    (``registry.register(StoreCollector(store))``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        return []  # no samples at registration time: collect runs queries

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "greenbutton_database_up", "1 when the database answered this scrape's queries"
        )
        try:
            jobs, auths = job_counts(self.store), authorization_counts(self.store)
            owed = revocations_owed(self.store)
        except Exception as exc:  # an outage is a value, not a failed scrape
            log.warning("metrics: database query failed: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        family = GaugeMetricFamily(
            "greenbutton_jobs", "Ingest jobs in the database by state", labels=["state"]
        )
        for state in sorted({*JOB_STATES, *jobs}):
            family.add_metric([state], jobs.get(state, 0))
        yield family
        family = GaugeMetricFamily(
            "greenbutton_authorizations",
            "Customer authorizations in the database by status",
            labels=["status"],
        )
        for status in sorted({*_STATUSES, *auths}):
            family.add_metric([status], auths.get(status, 0))
        yield family
        family = GaugeMetricFamily(
            "greenbutton_revocations_owed",
            "Disconnects the utility has not confirmed yet (retried by the worker)",
        )
        family.add_metric([], owed)
        yield family


class ClientCollector:
    """This process's client limits and the client certificate's expiry as metrics."""

    def __init__(self, client: Any, credentials: Credentials) -> None:
        self.client = client
        self.credentials = credentials

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        limits = client_limits(self.client)
        state = GaugeMetricFamily(
            "greenbutton_circuit_state",
            "The circuit breaker's state towards the utility (1 = current)",
            labels=["state"],
        )
        for name in ("closed", "open", "half_open"):
            state.add_metric([name], 1 if limits.circuit == name else 0)
        yield state
        failures = GaugeMetricFamily(
            "greenbutton_circuit_failures", "Consecutive failed operations towards the utility"
        )
        failures.add_metric([], limits.circuit_failures)
        yield failures
        if limits.rate_per_s is not None:
            rate = GaugeMetricFamily(
                "greenbutton_rate_limit_per_second", "Requests per second the client keeps to"
            )
            rate.add_metric([], limits.rate_per_s)
            yield rate
        if limits.quotas:
            limit = GaugeMetricFamily(
                "greenbutton_quota_limit", "The utility's request quota", labels=["period"]
            )
            used = GaugeMetricFamily(
                "greenbutton_quota_used",
                "Requests counted against the quota in its current window",
                labels=["period"],
            )
            for quota in limits.quotas:
                limit.add_metric([quota.period], quota.limit)
                if quota.used is not None:
                    used.add_metric([quota.period], quota.used)
            yield limit
            yield used
        expiry = certificate_expiry(self.credentials.client_cert)
        if expiry is not None:
            cert = GaugeMetricFamily(
                "greenbutton_client_certificate_expiry_seconds",
                "When the client certificate expires (Unix time)",
            )
            cert.add_metric([], expiry.timestamp())
            yield cert
