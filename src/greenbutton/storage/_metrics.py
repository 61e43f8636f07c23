"""What the database says about the work, as Prometheus metrics (DESIGN 3.7 ``/metrics``).

A custom collector rather than gauges set by the code that changes the state: the state is
shared by every process on the database (sync, web workers, ``greenbutton worker`` on other
machines), so the only true count is the database's, read when Prometheus scrapes. Each
scrape is two indexed GROUP BY queries (jobs by state with their rows,
``authorization_counts``) and a count of the owed revocations.

Series: ``greenbutton_jobs{state}`` (every state, 0 when none),
``greenbutton_rows_ingested_total`` (the readings the done jobs stored, cluster-wide: each
job records its rows when it is marked done, in the transaction that stores them),
``greenbutton_authorizations{status}``, ``greenbutton_revocations_owed`` and
``greenbutton_database_up`` (1, or 0 when the queries failed: the scrape still answers, so
an outage shows as a value instead of a gap). The rows counter is a sum over the jobs
table, so it only falls when jobs go with their authorization (a deleted customer);
Prometheus reads that as a counter reset.

:class:`ClientCollector` is this process's client: circuit, rate, quotas (limit, used,
remaining), the certificate's expiry, and two histograms the client records into its
``stats`` (``greenbutton_fetch_seconds``: each attempt at a resource request;
``greenbutton_rate_limit_wait_seconds``: each wait for the rate limit). Those are per
process, as Prometheus expects of histograms: the scraper sums them over the workers.

``prometheus_client`` (the ``web`` and ``workers`` extras) is imported when a scrape
collects, not when storage is imported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ..client import certificate_expiry, client_limits
from ..models import Credentials
from ._queries import authorization_counts, revocations_owed
from ._schema import ingest_jobs
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
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        up = GaugeMetricFamily(
            "greenbutton_database_up", "1 when the database answered this scrape's queries"
        )
        try:
            jobs, rows = _jobs_and_rows(self.store)
            auths, owed = authorization_counts(self.store), revocations_owed(self.store)
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
        ingested = CounterMetricFamily(
            "greenbutton_rows_ingested",  # the client library appends _total
            "Readings stored by the done ingest jobs of this database (every process)",
        )
        ingested.add_metric([], rows)
        yield ingested
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


def _jobs_and_rows(store: Store) -> tuple[dict[str, int], int]:
    """``({state: jobs}, rows of the done jobs)`` in one GROUP BY (the query the jobs
    count needs anyway, summing the rows column as it goes: one pass over the table)."""
    j = ingest_jobs
    query = select(j.c.state, func.count(), func.coalesce(func.sum(j.c.rows), 0)).group_by(
        j.c.state
    )
    with store.connect() as conn:
        found = conn.execute(query).all()
    jobs = {str(state): int(n) for state, n, _rows in found}
    done = [int(rows) for state, _n, rows in found if state == "done"]
    return jobs, done[0] if done else 0


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
            remaining = GaugeMetricFamily(
                "greenbutton_quota_remaining",
                "Requests the quota still allows in its current window",
                labels=["period"],
            )
            for quota in limits.quotas:
                limit.add_metric([quota.period], quota.limit)
                if quota.used is not None:
                    used.add_metric([quota.period], quota.used)
                    remaining.add_metric([quota.period], max(0, quota.limit - quota.used))
            yield limit
            yield used
            yield remaining
        stats = getattr(self.client, "stats", None)
        if stats is not None:
            yield _histogram(
                "greenbutton_fetch_seconds",
                "Time of each attempt at a resource request, sent to body read (this process)",
                stats.fetch_seconds,
            )
            yield _histogram(
                "greenbutton_rate_limit_wait_seconds",
                "Time each request waited for the rate limit (0: none; this process)",
                stats.rate_limit_wait_seconds,
            )
        expiry = certificate_expiry(self.credentials.client_cert)
        if expiry is not None:
            cert = GaugeMetricFamily(
                "greenbutton_client_certificate_expiry_seconds",
                "When the client certificate expires (Unix time)",
            )
            cert.add_metric([], expiry.timestamp())
            yield cert


def _histogram(name: str, documentation: str, histogram: Any) -> Any:
    """A ``HistogramMetricFamily`` from a client's histogram (``snapshot()``: cumulative
    buckets, +Inf last, and the sum)."""
    from prometheus_client.core import HistogramMetricFamily

    buckets, total = histogram.snapshot()
    return HistogramMetricFamily(
        name,
        documentation,
        buckets=[("+Inf" if bound == math.inf else repr(float(bound)), n) for bound, n in buckets],
        sum_value=total,
    )
