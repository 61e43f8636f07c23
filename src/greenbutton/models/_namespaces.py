"""The XML namespaces of Green Button data, one copy (issue 13.4): the parser reads them,
the ESPI writer and the simulator write them. (The compiled parse accelerator,
``parse/_cblocks.pyx``, keeps its own C string of :data:`ESPI_NS`: C cannot import it.)"""

from __future__ import annotations

__all__ = ["ATOM_NS", "CUSTOMER_NS", "ESPI_NS"]

#: Atom 1.0 (RFC 4287): feeds, entries, links.
ATOM_NS = "http://www.w3.org/2005/Atom"
#: NAESB REQ.21 ESPI: usage resources.
ESPI_NS = "http://naesb.org/espi"
#: ESPI's retail-customer (PII) resources.
CUSTOMER_NS = "http://naesb.org/espi/customer"
