"""BatchList notifications (ESPI_NOTES 2.5): the data custodian's PUSH to the third party.

After an asynchronous request, and on ``config.notification_interval`` for "new daily data",
the simulator POSTs ``<BatchList xmlns="http://naesb.org/espi"><resources>URI</resources>...``
to the registered ``notification_uri``. URIs are absolute under ``sim.resource_url`` and carry
``?correlationID=<uuid>`` naming a prepared request (:meth:`Notifier.prepare`), as PG&E's do.

Transport: HTTPS presenting the simulator's *server* certificate as its client identity
(``_pki`` issues it with ``clientAuth`` for this purpose: the third party sees the same
custodian identity it trusts for the API), trusting the system CA store plus ``sim.ca_cert``.
Plain ``http`` is allowed only to a loopback host. Redirects are never followed and the
notifier never fetches anything it is given (R69): it only ever POSTs to the registration.

Sending happens on one worker thread, off the request path and off the event loop, with a
timeout per attempt and a few retries with backoff on connection errors and 5xx/429.
Everything sent (or dropped) is recorded in :attr:`Notifier.sent` for tests.
"""

from __future__ import annotations

import queue
import ssl
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx2

from .._util import is_loopback_ip
from ..client import get_logger
from ..models import ESPI_NS
from ._config import Style
from ._data import SyntheticData, Window, local_midnight
from ._style import pge_document

if TYPE_CHECKING:
    from ._simulator import Simulator

__all__ = ["Notification", "Notifier", "Prepared", "batch_list_xml"]

log = get_logger("greenbutton.simulator.notify")

#: Prepared requests kept for GETs of notified URIs (oldest dropped first).
MAX_PREPARED = 10_000


def batch_list_xml(uris: Sequence[str], style: Style = "espi") -> bytes:
    """A BatchList document naming ``uris`` (the body of a notification); PG&E's is
    ``ns0:``-prefixed (ESPI_NOTES 2.5)."""
    items = "".join(f"<resources>{escape(u, quote=False)}</resources>" for u in uris)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<BatchList xmlns="{ESPI_NS}">{items}</BatchList>\n'
    ).encode()
    return pge_document(body) if style == "pge" else body


@dataclass(frozen=True, slots=True)
class Prepared:
    """An asynchronous request whose data is ready under ``?correlationID=``."""

    correlation_id: str
    path: str  # relative to the resource endpoint: Batch/Subscription/{id}, Batch/Bulk/{id}
    window: Window
    created_at: float


@dataclass(slots=True)
class Notification:
    """One BatchList POST (or its absence), as recorded for tests and logs."""

    uris: tuple[str, ...]
    body: bytes
    target: str
    status: int | None = None  # HTTP status of the last attempt
    attempts: int = 0
    dropped: bool = False  # faults.drop_notifications
    duplicate: bool = False  # the second POST of faults.duplicate_notifications
    error: str | None = None
    sent_at: float = field(default_factory=time.time)


class Notifier:
    """Sends BatchLists for one simulator.

    ``transport`` replaces the network (tests pass an ``httpx2.MockTransport``); ``delay``
    is how long after a request its notification goes out (PG&E: tens of seconds; here short
    so scripts need not wait). :meth:`notify` starts the worker on first use; call
    :meth:`start` to also run the daily-data clock and :meth:`close` on shutdown.
    """

    def __init__(
        self,
        sim: Simulator,
        *,
        transport: httpx2.BaseTransport | None = None,
        delay: float = 0.2,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sim = sim
        self.transport = transport
        self.delay = delay
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.clock = clock
        self.sent: list[Notification] = []
        self._prepared: OrderedDict[str, Prepared] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[float, tuple[str, ...]] | None] = queue.Queue()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._client: httpx2.Client | None = None

    # -- prepared requests --------------------------------------------------------------------

    def prepare(self, path: str, window: Window) -> str:
        """Remember a request's window under a new correlation id; returns the URI to notify."""
        cid = str(uuid.uuid4())
        with self._lock:
            self._prepared[cid] = Prepared(cid, path, window, self.clock())
            while len(self._prepared) > MAX_PREPARED:
                self._prepared.popitem(last=False)
        return f"{self.sim.resource_url.rstrip('/')}/{path}?correlationID={cid}"

    def prepared(self, correlation_id: str) -> Prepared | None:
        with self._lock:
            return self._prepared.get(correlation_id)

    # -- sending ------------------------------------------------------------------------------

    def notify(self, uris: Sequence[str], *, delay: float | None = None) -> None:
        """Queue one BatchList naming ``uris``; it is POSTed ``delay`` seconds from now."""
        due = self.clock() + (self.delay if delay is None else delay)
        with self._lock:
            self._pending += 1
        self._ensure_worker()
        self._queue.put((due, tuple(uris)))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued notification has been handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def new_data(self) -> list[str]:
        """One round of "new daily data": a BatchList naming yesterday's data of every
        active authorization (nothing is sent when there is none). Returns the URIs."""
        state = self.sim.state
        with state.lock:
            subs = list(
                dict.fromkeys(g.subscription_id for g in state.grants.values() if g.status == 1)
            )
        if not subs:
            return []
        window = Window()
        data = self.sim.data
        if isinstance(data, SyntheticData):
            _, last = data.history()
            window = Window(
                published_min=local_midnight(last),
                published_max=local_midnight(last + timedelta(days=1)),
            )
        uris = [self.prepare(f"Batch/Subscription/{sub}", window) for sub in subs]
        self.notify(uris, delay=0)
        return uris

    def start(self) -> None:
        """Start the worker, and the daily-data clock when ``notification_interval`` is set."""
        self._ensure_worker()
        interval = self.sim.config.notification_interval
        if interval and self._ticker is None:
            self._ticker = threading.Thread(
                target=self._tick, args=(interval,), name="gb-sim-notify-clock", daemon=True
            )
            self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        self._queue.put(None)
        for thread in (self._worker, self._ticker):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
        if self._client is not None:
            self._client.close()

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="gb-sim-notify", daemon=True)
                self._worker.start()

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.new_data()
            except Exception:  # the clock must survive a bad round
                log.exception("daily-data notification round failed")

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            due, uris = item
            wait = due - self.clock()
            if wait > 0 and self._stop.wait(wait):
                return
            try:
                self._deliver(uris)
            except Exception:  # one bad notification must not stop the others
                log.exception("notification failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, uris: tuple[str, ...]) -> None:
        target = self.sim.state.registration.notification_uri
        body = batch_list_xml(uris, self.sim.config.style)
        faults = self.sim.faults
        if faults.drop_notifications:
            self._record(Notification(uris, body, target, dropped=True))
            return
        copies = 2 if faults.duplicate_notifications else 1
        for n in range(copies):
            note = Notification(uris, body, target, duplicate=n > 0)
            self._post(note)
            self._record(note)

    def _record(self, note: Notification) -> None:
        with self._lock:
            self.sent.append(note)

    def _post(self, note: Notification) -> None:
        problem = _target_problem(note.target)
        if problem is not None:
            note.error = problem
            log.warning("notification not sent: %s", problem)
            return
        client = self._http()
        for attempt in range(1, self.retries + 1):
            note.attempts = attempt
            try:
                response = client.post(
                    note.target,
                    content=note.body,
                    headers={"Content-Type": "application/xml"},
                )
                note.status = response.status_code
                note.error = None
                if response.status_code < 500 and response.status_code != 429:
                    return
            except httpx2.HTTPError as exc:
                note.error = f"{type(exc).__name__}: {exc}"
            if attempt < self.retries and self._stop.wait(self.backoff * 2 ** (attempt - 1)):
                return

    def _http(self) -> httpx2.Client:
        if self._client is None:
            if self.transport is not None:
                self._client = httpx2.Client(transport=self.transport, timeout=self.timeout)
            else:
                self._client = httpx2.Client(
                    verify=self._ssl_context(), timeout=self.timeout, follow_redirects=False
                )
        return self._client

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()  # the system CA store ...
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        sim = self.sim
        if sim.ca_cert.is_file():
            ctx.load_verify_locations(cafile=str(sim.ca_cert))  # ... plus the simulator's CA
        if sim.server_cert.is_file() and sim.server_key.is_file():
            ctx.load_cert_chain(str(sim.server_cert), str(sim.server_key))
        return ctx


def _target_problem(url: str) -> str | None:
    """Why ``url`` must not receive a notification (None when it may)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and is_loopback_ip(parts.hostname):
        return None
    return f"notification URI must be https (or http to a loopback IP): {url!r}"
