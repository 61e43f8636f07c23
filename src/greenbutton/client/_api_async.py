"""The ESPI methods of both clients, written once, here as coroutines: ``scripts/unasync.py``
writes the blocking copy, ``_api_sync.py``, from this file (a test keeps the two equal).
Every method builds a flow from :mod:`greenbutton.espi._operations` and hands it to
``_run``, so token class per resource, bounded 401 handling, single-flight refresh,
date-window paging, retries, rate limit, deadline and body cap exist once."""

from __future__ import annotations

from typing import IO, Literal, TypeVar, overload

# unasync: async-only
import anyio.to_thread

# unasync: end
from .._secret import Secret
from ..espi import _operations as ops
from ..espi._flow import Flow
from ..espi._operations import Accepted
from ..espi._paths import TimeLike
from ..models import Document
from ..models._resources import ServiceStatus
from ..oauth import Token
from ..oauth._authorize import AuthorizationRequest
from ._base import Authorization, _Base, _secret

T = TypeVar("T")


class _AsyncAPI(_Base):
    """The data and administration methods; the class that mixes this in provides ``_run``."""

    async def _run(self, flow: Flow[T]) -> T:
        raise NotImplementedError  # AsyncClient._run

    # unasync: async-only
    async def _akey(self, authorization: Authorization) -> str:
        # The store lookups behind a key (a database query) run off the event loop.
        return await anyio.to_thread.run_sync(self._key, authorization)

    # unasync: end
    async def exchange_code(
        self,
        callback: str,
        pending: AuthorizationRequest | None = None,
        *,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
        key: str | None = None,
    ) -> tuple[str, Token]:
        """Exchange the callback (URL or query, checked against ``pending``) or a bare code
        for tokens (RFC 6749 4.1.3); stores them and returns ``(key, token)``."""
        return await self._run(
            ops.exchange_code(
                self._context,
                callback,
                pending,
                redirect_uri=redirect_uri,
                code_verifier=code_verifier,
                key=key,
            )
        )

    async def refresh(self, authorization: Authorization) -> Token:
        """Refresh the grant's access token now (RFC 6749 6); a rotated refresh token is saved
        before it is used (R20)."""
        return await self._run(ops.force_refresh(self._context, await self._akey(authorization)))

    async def client_token(self) -> Token:
        """The client-credentials token (RFC 6749 4.4) for Bulk, Authorization and
        ReadServiceStatus calls; cached until near expiry (R19)."""
        return await self._run(ops.client_token(self._context))

    @overload
    async def usage_points(
        self, authorization: Authorization, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def usage_points(self, authorization: Authorization, *, raw: Literal[True]) -> bytes: ...

    @overload
    async def usage_points(
        self, authorization: Authorization, *, raw: bool = False
    ) -> Document | bytes: ...

    async def usage_points(
        self, authorization: Authorization, *, raw: bool = False
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint``: the metering points the grant covers (ESPI
        UsagePoint feed), to pick what to fetch."""
        return await self._run(
            ops.usage_points(self._context, await self._akey(authorization), raw=raw)
        )

    @overload
    async def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: bool = False
    ) -> Document | bytes: ...

    async def usage_point_resource(
        self, authorization: Authorization, usage_point: str, *, raw: bool = False
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint/{id}``: one usage point's resource, without its
        readings (ESPI UsagePoint)."""
        k = await self._akey(authorization)
        return await self._run(ops.usage_points(self._context, k, usage_point, raw=raw))

    @overload
    async def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[True],
    ) -> list[bytes]: ...

    @overload
    async def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]: ...

    async def usage_point(
        self,
        authorization: Authorization,
        usage_point: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]:
        """``Batch/Subscription/{sub}/UsagePoint/{id}`` over ``[start, end)``, the PG&E "sync"
        call: one usage point with its readings, paged by date window and merged."""
        k = await self._akey(authorization)
        return await self._run(
            ops.usage_point(self._context, k, usage_point, start=start, end=end, raw=raw)
        )

    @overload
    async def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[True],
    ) -> list[bytes]: ...

    @overload
    async def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]: ...

    async def subscription(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | list[bytes]:
        """``Batch/Subscription/{sub}`` over ``[start, end)``: every usage point of the grant
        with its readings, paged by date window and merged."""
        k = await self._akey(authorization)
        return await self._run(ops.subscription(self._context, k, start=start, end=end, raw=raw))

    async def request_subscription_async(
        self,
        authorization: Authorization,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> Accepted:
        """``Batch/Subscription/{sub}``, the PG&E "async" call: 202 now, a BatchList
        notification later whose URIs :meth:`get` fetches."""
        k = await self._akey(authorization)
        return await self._run(
            ops.request_subscription_async(self._context, k, start=start, end=end)
        )

    @overload
    async def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    async def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes: ...

    async def meter_readings(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint/{id}/MeterReading[/{mr}]``: a usage point's
        reading series and what each measures (ESPI MeterReading)."""
        return await self._run(
            ops.customer_resource(
                self._context,
                await self._akey(authorization),
                lambda p, s: p.meter_readings(s, usage_point, meter_reading),
                raw=raw,
            )
        )

    @overload
    async def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    async def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | bytes: ...

    async def interval_blocks(
        self,
        authorization: Authorization,
        usage_point: str,
        meter_reading: str,
        interval_block: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        raw: bool = False,
    ) -> Document | bytes:
        """``.../MeterReading/{mr}/IntervalBlock[/{ib}]`` over ``[start, end)``: the interval
        readings themselves (ESPI IntervalBlock)."""
        return await self._run(
            ops.customer_resource(
                self._context,
                await self._akey(authorization),
                lambda p, s: p.interval_blocks(s, usage_point, meter_reading, interval_block),
                raw=raw,
                start=start,
                end=end,
            )
        )

    @overload
    async def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    async def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes: ...

    async def usage_summaries(
        self,
        authorization: Authorization,
        usage_point: str,
        usage_summary: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes:
        """``Subscription/{sub}/UsagePoint/{id}/UsageSummary[/{us}]``: billing-period totals
        and costs (ESPI UsageSummary)."""
        return await self._run(
            ops.customer_resource(
                self._context,
                await self._akey(authorization),
                lambda p, s: p.usage_summaries(s, usage_point, usage_summary),
                raw=raw,
            )
        )

    @overload
    async def reading_types(
        self,
        authorization: Authorization,
        reading_type: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def reading_types(
        self, authorization: Authorization, reading_type: str | None = None, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def reading_types(
        self, authorization: Authorization, reading_type: str | None = None, *, raw: bool = False
    ) -> Document | bytes: ...

    async def reading_types(
        self, authorization: Authorization, reading_type: str | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """``ReadingType[/{id}]``: unit, multiplier and interval of reading series, to scale
        raw values (ESPI ReadingType)."""
        url = self.paths.reading_types(reading_type)
        return await self._run(
            ops.shared_resource(self._context, await self._akey(authorization), url, raw=raw)
        )

    @overload
    async def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: bool = False
    ) -> Document | bytes: ...

    async def local_time_parameters(
        self, authorization: Authorization, ltp: str | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """``LocalTimeParameters[/{id}]``: time zone offset and DST rules, to show local times
        (ESPI LocalTimeParameters)."""
        url = self.paths.local_time_parameters(ltp)
        return await self._run(
            ops.shared_resource(self._context, await self._akey(authorization), url, raw=raw)
        )

    @overload
    async def retail_customer(
        self,
        authorization: Authorization,
        retail_customer: str | None = None,
        *,
        raw: Literal[False] = False,
    ) -> Document: ...

    @overload
    async def retail_customer(
        self,
        authorization: Authorization,
        retail_customer: str | None = None,
        *,
        raw: Literal[True],
    ) -> bytes: ...

    @overload
    async def retail_customer(
        self,
        authorization: Authorization,
        retail_customer: str | None = None,
        *,
        raw: bool = False,
    ) -> Document | bytes: ...

    async def retail_customer(
        self, authorization: Authorization, retail_customer: str | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """``RetailCustomer/{id}``: the customer's account record, when the grant's scope
        covers it (ESPI RetailCustomer)."""
        k = await self._akey(authorization)
        return await self._run(ops.retail_customer(self._context, k, retail_customer, raw=raw))

    @overload
    async def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: bool = False
    ) -> Document | bytes: ...

    async def get(
        self, uri: str, authorization: Authorization | None = None, *, raw: bool = False
    ) -> Document | bytes:
        """A URI from a BatchList notification, fetched verbatim (``correlationID`` kept);
        checked to be the custodian's before it is sent."""
        k = None if authorization is None else await self._akey(authorization)
        return await self._run(ops.get(self._context, uri, k, raw=raw))

    async def get_into(
        self, uri: str, target: IO[bytes], authorization: Authorization | None = None
    ) -> int:
        """:meth:`get` with ``raw=True``, but the body goes into ``target`` (a binary file)
        from the download's spool on disk, never whole in memory: for a Bulk file of every
        customer. Returns the bytes written (0 when the custodian answered 202 or 204)."""
        k = None if authorization is None else await self._akey(authorization)
        return await self._run(ops.get_into(self._context, uri, target, k))

    async def bulk(
        self,
        bulk_id: str | None = None,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> Accepted:
        """``Batch/Bulk/{id}`` over ``[start, end)`` with the client token: every customer of a
        bulk grant; 202 now, a BatchList notification later."""
        return await self._run(ops.bulk(self._context, bulk_id, start=start, end=end))

    @overload
    async def authorizations(self, *, raw: Literal[False] = False) -> Document: ...

    @overload
    async def authorizations(self, *, raw: Literal[True]) -> bytes: ...

    @overload
    async def authorizations(self, *, raw: bool = False) -> Document | bytes: ...

    async def authorizations(self, *, raw: bool = False) -> Document | bytes:
        """``Authorization``: every grant the custodian holds for this third party (client
        token), to reconcile the local ones."""
        return await self._run(ops.authorizations(self._context, raw=raw))

    @overload
    async def authorization(
        self, authorization_id: str, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def authorization(self, authorization_id: str, *, raw: Literal[True]) -> bytes: ...

    @overload
    async def authorization(
        self, authorization_id: str, *, raw: bool = False
    ) -> Document | bytes: ...

    async def authorization(self, authorization_id: str, *, raw: bool = False) -> Document | bytes:
        """``Authorization/{id}``: one grant's status, scope and resourceURI (client token)."""
        return await self._run(ops.authorizations(self._context, authorization_id, raw=raw))

    async def revoke(self, authorization: str) -> None:
        """Revoke at the custodian (ESPI DELETE) and drop the local token; ``authorization``
        is the grant's store key or the custodian's authorization id."""
        await self._run(ops.revoke(self._context, authorization))

    @overload
    async def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: Literal[False] = False
    ) -> Document: ...

    @overload
    async def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: Literal[True]
    ) -> bytes: ...

    @overload
    async def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: bool = False
    ) -> Document | bytes: ...

    async def application_information(
        self, application_id: str, registration_token: Secret | str, *, raw: bool = False
    ) -> Document | bytes:
        """``ApplicationInformation/{id}``: this third party's registration (endpoints,
        scopes), read with the registration access token."""
        return await self._run(
            ops.application_information(
                self._context, application_id, _secret(registration_token), raw=raw
            )
        )

    @overload
    async def service_status(self, *, raw: Literal[False] = False) -> ServiceStatus: ...

    @overload
    async def service_status(self, *, raw: Literal[True]) -> bytes: ...

    @overload
    async def service_status(self, *, raw: bool = False) -> ServiceStatus | bytes: ...

    async def service_status(self, *, raw: bool = False) -> ServiceStatus | bytes:
        """``ReadServiceStatus``: whether the custodian's data service is up (ESPI
        ServiceStatus), with the client token."""
        return await self._run(ops.service_status(self._context, raw=raw))
