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
from typing import TYPE_CHECKING

from ._queries import authorization_counts, job_counts, revocations_owed
from ._store import Store

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["JOB_STATES", "StoreCollector"]

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
