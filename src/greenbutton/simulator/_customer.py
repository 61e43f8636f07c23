"""The retail-customer (PII) resources of one customer, in the customer namespace
(ESPI_NOTES 1.2, 2.6): Customer > CustomerAccount > CustomerAgreement > ServiceLocation >
Meter / EndDevice, at the nested ``RetailCustomer/{rc}/Customer/...`` hrefs PG&E uses.

The batch feed (``Batch/RetailCustomer/{rc}``), every member and every collection are cut
from the one list :func:`customer_resources` makes, so each link of the feed resolves to
exactly the entry the feed carries. One service agreement per usage point, as a utility
keeps one per service; its id is the agreement's own number, not the subscription's.

Ids are derived from the customer's persisted ids (a hash), so older state folders get
the same ids on every start without a new state format. Element names differ by style:
ESPI 4.0 names the customer ``customerName`` and the account and agreement numbers
``accountId`` / ``agreementId``, which PG&E's 2018 schema lacks; PG&E writes all three
in ``name`` (deprecated in 4.0 but kept only in ``--style pge``).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape

from ..models import CUSTOMER_NS
from ._config import Style
from ._state import Customer, UsagePointSpec

__all__ = ["CustomerResource", "customer_resources", "service_agreement_id"]

_METER_TYPES = {
    "electric_15min": ("EMTR 15MIN/SM/CL200/2S", 900),
    "electric_hourly": ("EMTR 60MIN/SM/CL200/2S", 3600),
    "solar_net": ("EMTR NEM/BIDIR/CL200/2S", 3600),
    "gas_daily": ("GMTR DAILY/AMR/250", 86400),
}


@dataclass(frozen=True, slots=True)
class CustomerResource:
    """One entry of the customer feed; hrefs are relative to the resource endpoint."""

    href: str
    kind: str  # Customer, CustomerAccount, CustomerAgreement, ServiceLocation, Meter ...
    title: str
    content: str
    related: tuple[str, ...] = ()

    @property
    def up(self) -> str:
        return self.href.rsplit("/", 1)[0]


def _digits(key: str, n: int = 10) -> str:
    """A stable n-digit number for ``key`` (leading digit non-zero)."""
    value = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return str(10 ** (n - 1) + value % (9 * 10 ** (n - 1)))


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def service_agreement_id(customer: Customer, spec: UsagePointSpec) -> str:
    """The service agreement of one usage point (stable, distinct from the subscription)."""
    return _digits(f"agreement:{customer.retail_customer_id}:{spec.id}")


def _e(text: str) -> str:
    return escape(text, quote=False)


def customer_resources(customer: Customer, rc: str, style: Style) -> list[CustomerResource]:
    """Every customer-namespace resource of ``customer``, in feed order, under
    ``RetailCustomer/{rc}`` (``rc``: the id the client asked with)."""
    pge = style == "pge"
    ns = f'xmlns="{CUSTOMER_NS}"'
    cust_id = _b64(_digits(f"customer:{customer.retail_customer_id}"))
    account = _digits(f"account:{customer.retail_customer_id}")
    location_id = _b64(_digits(f"premise:{customer.retail_customer_id}"))
    name = _e(customer.name or customer.username)
    cust = f"RetailCustomer/{rc}/Customer/{cust_id}"
    acct = f"{cust}/CustomerAccount/{account}"
    out = [
        CustomerResource(
            href=cust,
            kind="Customer",
            title="Customer",
            related=(f"{cust}/CustomerAccount",),
            content=f"<Customer {ns}><name>{name}</name><kind>residential</kind></Customer>"
            if pge
            else f"<Customer {ns}><kind>residential</kind>"
            f"<customerName>{name}</customerName></Customer>",
        ),
        CustomerResource(
            href=acct,
            kind="CustomerAccount",
            title="Customer account",
            related=(f"{acct}/CustomerAgreement",),
            content=f"<CustomerAccount {ns}><name>{account}</name><type>residential</type>"
            "</CustomerAccount>"
            if pge
            else f"<CustomerAccount {ns}><type>residential</type>"
            f"<accountId>{account}</accountId></CustomerAccount>",
        ),
    ]
    for spec in customer.usage_points:
        sa = service_agreement_id(customer, spec)
        agreement = f"{acct}/CustomerAgreement/{sa}"
        location = f"{agreement}/ServiceLocation/{location_id}"
        meter_type, interval = _METER_TYPES.get(spec.profile, ("EMTR", 3600))
        serial = _digits(f"meter:{customer.retail_customer_id}:{spec.id}")
        status = "<docStatus><value>Active</value></docStatus><signDate>1376550000</signDate>"
        out += [
            CustomerResource(
                href=agreement,
                kind="CustomerAgreement",
                title="Service agreement",
                related=(f"{agreement}/ServiceLocation",),
                content=f"<CustomerAgreement {ns}><name>{sa}</name><type>AGR</type>{status}"
                "</CustomerAgreement>"
                if pge
                else f"<CustomerAgreement {ns}><type>AGR</type>{status}"
                f"<agreementId>{sa}</agreementId></CustomerAgreement>",
            ),
            CustomerResource(
                href=location,
                kind="ServiceLocation",
                title="Service location",
                related=(f"{location}/Meter", f"{location}/EndDevice"),
                content=f"<ServiceLocation {ns}><mainAddress><streetDetail>"
                "<addressGeneral>1 SIMULATED WAY</addressGeneral></streetDetail><townDetail>"
                "<code>94000</code><name>SAN FRANCISCO</name>"
                "<stateOrProvince>CA</stateOrProvince></townDetail></mainAddress>"
                "</ServiceLocation>",
            ),
            CustomerResource(
                href=f"{location}/Meter/{serial}",
                kind="Meter",
                title="Meter",
                content=f"<Meter {ns}><type>{meter_type}</type>"
                f"<serialNumber>{serial}</serialNumber>"
                f"<intervalLength>{interval}</intervalLength></Meter>",
            ),
            CustomerResource(
                href=f"{location}/EndDevice/{serial}",
                kind="EndDevice",
                title="End device",
                content=f"<EndDevice {ns}><type>{meter_type}</type>"
                f"<serialNumber>{serial}</serialNumber><isVirtual>false</isVirtual>"
                "</EndDevice>",
            ),
        ]
    return out
