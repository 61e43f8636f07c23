"""``greenbutton inspect``: what is in a Green Button file, and what is odd about it.

The facts are gathered once into plain dicts (the ``--json`` output) and the Rich tables are
drawn from those same dicts, so the two views never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table

from .. import analysis
from ..models import (
    ApplicationInformation,
    Authorization,
    DateTimeInterval,
    Document,
    GenericResource,
    ReadingType,
    decode_time_zone,
)
from ..parse import parse
from . import cli
from ._output import FileSource, Window, echo_json, input_files, output_options, window_options

__all__ = ["build_report", "inspect_command"]

_AUTH_STATUS = {0: "revoked", 1: "active", 2: "denied"}
_APP_STATUS = {1: "review", 2: "production", 3: "on hold", 4: "revoked"}
_SHOWN_GAPS = 5  # gaps listed in the table; --json lists them all
_num = analysis.format_number


@cli.command("inspect")
@window_options
@input_files()
@output_options(help="Print the same facts as JSON.")
def inspect_command(files: tuple[FileSource, ...], as_json: bool, window: Window) -> None:
    """Summarize what Green Button FILES hold and what is odd in them.

    Per usage point and reading: units, coverage, totals, gaps, duplicates, DST days, time
    zone, and warnings about quirks.

    Non-usage documents (Authorization, ApplicationInformation, customer data, usage
    summaries) are summarized too. FILES may be XML, or .zip/.gz downloads as they come.

    \b
    Examples:
      greenbutton inspect usage.xml
      greenbutton inspect pge_download.zip --json
      greenbutton inspect usage.xml --start 2024-01-01 --end 2024-02-01
      greenbutton inspect sdge_sample.xml --tz America/Los_Angeles
    """
    # Parse everything first: a bad file fails before any output, so --json stays valid.
    reports = [build_report(str(path), window.apply(parse(path))) for path in files]
    if as_json:
        echo_json({"files": reports}, indent=2, ensure_ascii=False)
        return
    console = Console(highlight=False, soft_wrap=False)
    for report in reports:
        _render(console, report)


# --- facts ------------------------------------------------------------------------------


def build_report(name: str, doc: Document) -> dict[str, Any]:
    """Every fact ``inspect`` shows about one parsed document, JSON-ready."""
    series = analysis.summarize(doc)
    by_up: dict[str, list[dict[str, Any]]] = {}
    for s in series:
        by_up.setdefault(s.usage_point, []).append(_series(s))
    warnings = list(doc.warnings)
    for s in series:
        warnings += [f"{s.usage_point} / {s.meter_reading}: {w}" for w in s.warnings]
    usage_points = []
    for up in doc.usage_points:
        _, tz_label, problems = analysis.time_zone_for(doc, up)
        # The parser already warns about rules it could not decode; add only the rest.
        warnings += [
            f"{up.id}: time zone: {p}" for p in problems if not any(p in w for w in doc.warnings)
        ]
        usage_points.append(
            {
                "id": up.id,
                "href": up.href,
                "service_kind": up.service_kind_name,
                "time_zone": tz_label,
                "time_zone_problems": list(problems),
                "meter_readings": by_up.get(up.id, []),
            }
        )
    linked = {id(mr.reading_type) for mr in doc.meter_readings}
    return {
        "file": name,
        "root": doc.root,
        "feed": {"id": doc.feed_id, "title": doc.feed_title, "href": doc.feed_href},
        "usage_points": usage_points,
        "reading_types": [
            {"href": rt.href, "description": analysis.describe_reading_type(rt)}
            for rt in doc.reading_types
            if id(rt) not in linked
        ],
        "local_time_parameters": [
            {
                "href": ltp.href,
                **_tz_facts(ltp.tz_offset, ltp.dst_offset, ltp.dst_start_rule, ltp.dst_end_rule),
            }  # fmt: skip
            for ltp in doc.local_time_parameters
        ]
        if not doc.usage_points
        else [],
        "usage_summaries": [
            {"href": us.href, **analysis.usage_summary_facts(us)} for us in doc.usage_summaries
        ],
        "authorizations": [_authorization(a) for a in doc.authorizations],
        "application_information": [_application(a) for a in doc.application_information],
        "customer_resources": [_generic(c) for c in doc.customer_resources],
        "other_resources": [_generic(c) for c in doc.other_resources],
        "service_status": (
            None if doc.service_status is None else {"available": doc.service_status.available}
        ),
        "batch_list": None if doc.batch_list is None else list(doc.batch_list.resources),
        "warnings": warnings,
    }


def _series(s: analysis.SeriesSummary) -> dict[str, Any]:
    rt: ReadingType | None = s.reading_type
    gaps = s.gaps
    return {
        "meter_reading": s.meter_reading,
        "reading_type": s.description,
        "uom": rt.unit if rt else None,
        "power_of_ten_multiplier": rt.power_of_ten_multiplier if rt else None,
        "flow_direction": s.flow_direction,
        "kind": rt.kind_name if rt else None,
        "commodity": rt.commodity_name if rt else None,
        "accumulation": s.accumulation,
        "interval_length": rt.interval_length if rt else None,
        "readings": s.readings,
        "readings_in_file": s.raw_readings,
        "coverage": None
        if s.first_start is None or s.last_end is None
        else {
            "start": _iso(s.first_start),
            "end": _iso(s.last_end),
            "start_local": _local_iso(s.first_start, s.tz),
            "end_local": _local_iso(s.last_end, s.tz),
            "seconds": s.last_end - s.first_start,
        },
        "interval_lengths": {str(k): v for k, v in s.interval_lengths.items()},
        "total": None
        if s.total is None
        else {"value": s.total, "unit": s.unit, "basis": s.total_basis},
        "peak": None if s.peak is None else {"value": s.peak, "unit": s.unit},
        "mean": None if s.mean is None else {"value": s.mean, "unit": s.unit},
        "cost": None
        if s.cost_total is None
        else {"total": s.cost_total, "currency": s.currency, "readings": s.cost_readings},
        "gaps": {
            "count": len(gaps),
            "missing_intervals": sum(g.missing for g in gaps),
            "missing_seconds": s.missing_seconds,
            "list": [
                {"from": _iso(g.start), "to": _iso(g.end), "missing": g.missing} for g in gaps
            ],
        },
        "overlaps": s.overlaps,
        "duplicates": {
            "extra_readings": s.duplicates.extra,
            "starts": s.duplicates.starts,
            "conflicting": s.duplicates.conflicting,
        },
        "dst_days": [
            {
                "date": d.day.isoformat(),
                "day_hours": d.day_hours,
                "data_hours": d.data_hours,
                "readings": d.readings,
                "complete": d.complete,
            }
            for d in s.dst_days
        ],
        "zero_duration": s.zero_duration,
        "outside_block": s.outside_block,
        "missing_values": s.missing_values,
        "warnings": list(s.warnings),
    }


def _tz_facts(
    tz_offset: int | None, dst_offset: int | None, start: str | None, end: str | None
) -> dict[str, Any]:
    info = decode_time_zone(
        tz_offset=tz_offset, dst_offset=dst_offset, dst_start_rule=start, dst_end_rule=end
    )
    return {
        "tz_offset": tz_offset,
        "dst_offset": dst_offset,
        "dst_start_rule": start,
        "dst_end_rule": end,
        "iana": info.iana,
        "dst_start": info.dst_start.describe() if info.dst_start else None,
        "dst_end": info.dst_end.describe() if info.dst_end else None,
        "problems": list(info.problems),
    }


def _authorization(a: Authorization) -> dict[str, Any]:
    # Tokens never appear here: only the grant's state and what it covers.
    return {
        "href": a.href,
        "status": _AUTH_STATUS.get(a.status, a.status) if a.status is not None else None,
        "scope": a.scope,
        "resource_uri": a.resource_uri,
        "authorization_uri": a.authorization_uri,
        "customer_resource_uri": a.customer_resource_uri,
        "authorized_period": _period(a.authorized_period),
        "published_period": _period(a.published_period),
        "expires_at": _iso(a.expires_at) if a.expires_at is not None else None,
        "grant_type": a.grant_type,
        "token_type": a.token_type,
        "error": a.error,
        "error_description": a.error_description,
    }


def _application(a: ApplicationInformation) -> dict[str, Any]:
    # client_secret and registration_access_token are secrets: never printed.
    status = a.data_custodian_application_status
    return {
        "href": a.href,
        "title": a.title,
        "data_custodian_id": a.data_custodian_id,
        "status": _APP_STATUS.get(status, status) if status is not None else None,
        "client_id": a.client_id,
        "client_id_issued_at": _iso(a.client_id_issued_at) if a.client_id_issued_at else None,
        "third_party_application_name": a.third_party_application_name,
        "endpoints": {
            "authorization": a.authorization_server_authorization_endpoint,
            "token": a.authorization_server_token_endpoint,
            "resource": a.data_custodian_resource_endpoint,
            "bulk_request": a.data_custodian_bulk_request_uri,
            "scope_selection": a.data_custodian_scope_selection_screen_uri,
            "third_party_notify": a.third_party_notify_uri,
        },
        "redirect_uris": list(a.redirect_uris),
        "scopes": list(a.scopes),
        "grant_types": list(a.grant_types),
        "token_endpoint_auth_method": a.token_endpoint_auth_method,
    }


def _generic(c: GenericResource) -> dict[str, Any]:
    if c.element == "ProgramIdMappings":
        # PG&E's decoding table for the tou / cpp / consumptionTier codes on readings.
        entries = c.data.get("programIdMapping", [])
        if isinstance(entries, Mapping):
            entries = [entries]
        summary = {
            f"{e.get('tOUorCPPorConsumptionTier', '?')} {e.get('code', '?')}": " ".join(
                str(x) for x in (e.get("name"), e.get("note")) if x
            )
            for e in entries
            if isinstance(e, Mapping)
        }
        return {"element": c.element, "href": c.href, "title": c.title, "summary": summary}
    return {"element": c.element, "href": c.href, "title": c.title, "summary": _flatten(c.data)}


def _flatten(data: Any, prefix: str = "", limit: int = 8) -> dict[str, str]:
    """Leaf values of a resource's nested content as ``path: value`` (first few only)."""
    out: dict[str, str] = {}

    def walk(value: Any, path: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            if value and all(isinstance(v, Mapping) for v in value):
                out[path] = f"{len(value)} entries"
            else:
                out[path] = ", ".join(str(v) for v in value)
        elif value not in (None, ""):
            out[path] = str(value)

    walk(data, prefix)
    return out


def _period(p: DateTimeInterval | None) -> dict[str, str | None] | None:
    if p is None or p.start is None:
        return None
    return {"start": _iso(p.start), "end": _iso(p.end) if p.end is not None else None}


def _iso(epoch: int) -> str | None:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # PG&E "forever" periods run past year 9999
        return None


def _local_iso(epoch: int, tz: tzinfo) -> str:
    return analysis.local_datetime(epoch, tz).isoformat()


# --- rendering --------------------------------------------------------------------------


def _render(console: Console, r: Mapping[str, Any]) -> None:
    console.print(Rule(f"[bold]{escape(r['file'])}", align="left"))
    feed = r["feed"]
    head = [f"root: {r['root']}"]
    if feed["title"]:
        head.append(escape(feed["title"]))
    if feed["href"]:
        head.append(escape(feed["href"]))
    console.print(" · ".join(head))

    if r["usage_points"]:
        _usage_point_table(console, r["usage_points"])
        for up in r["usage_points"]:
            for s in up["meter_readings"]:
                _series_table(console, up, s)
    if r["reading_types"]:
        t = _table("Reading types (not linked to a usage point)", "href", "reading type")
        for rt in r["reading_types"]:
            t.add_row(escape(rt["href"] or "-"), escape(rt["description"]))
        console.print(t)
    for ltp in r["local_time_parameters"]:
        _kv(console, f"LocalTimeParameters {ltp['href'] or ''}", _ltp_rows(ltp))
    if r["usage_summaries"]:
        _summaries_table(console, r["usage_summaries"])
    for a in r["authorizations"]:
        _kv(console, f"Authorization {a['href'] or ''}", _auth_rows(a))
    for a in r["application_information"]:
        _kv(console, f"ApplicationInformation {a['href'] or ''}", _app_rows(a))
    for key, title in (
        ("customer_resources", "Customer data"),
        ("other_resources", "Other resources"),
    ):
        if r[key]:
            t = _table(title, "resource", "content")
            for c in r[key]:
                content = "; ".join(f"{k}: {v}" for k, v in c["summary"].items()) or "-"
                t.add_row(escape(c["element"]), escape(content))
            console.print(t)
    if r["service_status"] is not None:
        up = "available" if r["service_status"]["available"] else "unavailable"
        console.print(f"ServiceStatus: {up}")
    if r["batch_list"] is not None:
        console.print(f"BatchList: {len(r['batch_list'])} resource(s)")
        for uri in r["batch_list"]:
            console.print(f"  {escape(uri)}")
    if not any(
        r[k]
        for k in (
            "usage_points", "reading_types", "local_time_parameters", "usage_summaries",
            "authorizations", "application_information", "customer_resources",
            "other_resources",
        )
    ) and r["service_status"] is None and r["batch_list"] is None:  # fmt: skip
        console.print("No Green Button resources found.")
    if r["warnings"]:
        console.print("[bold yellow]Warnings[/]")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for w in r["warnings"]:
            grid.add_row(" •", escape(w))
        console.print(grid)
    else:
        console.print("No warnings.")
    console.print()


def _table(title: str, *columns: str) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold", expand=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


def _kv(console: Console, title: str, rows: Sequence[tuple[str, str]]) -> None:
    t = Table(title=escape(title.strip()), title_justify="left", title_style="bold",
              show_header=False)  # fmt: skip
    t.add_column(style="dim", no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, escape(v))
    console.print(t)


def _usage_point_table(console: Console, ups: Sequence[Mapping[str, Any]]) -> None:
    t = _table("Usage points", "id", "service", "meter readings", "time zone")
    for up in ups:
        tz = up["time_zone"]
        if up["time_zone_problems"]:
            tz += " — " + "; ".join(up["time_zone_problems"])
        t.add_row(
            escape(up["id"]),
            escape(str(up["service_kind"] if up["service_kind"] is not None else "-")),
            str(len(up["meter_readings"])),
            escape(tz),
        )
    console.print(t)


def _series_table(console: Console, up: Mapping[str, Any], s: Mapping[str, Any]) -> None:
    rows: list[tuple[str, str]] = [("reading type", s["reading_type"])]
    n = f"{s['readings']:,}"
    if s["readings_in_file"] != s["readings"]:
        n += f" ({s['readings_in_file']:,} in the file)"
    rows.append(("readings", n))
    cov = s["coverage"]
    if cov:
        rows.append(("coverage", _coverage_text(cov)))
        rows.append(("coverage UTC", f"{cov['start']} → {cov['end']}"))
    if s["interval_lengths"]:
        rows.append(("interval lengths", _lengths_text(s["interval_lengths"])))
    if s["total"]:
        tot = s["total"]
        note = " (last − first register reading)" if tot["basis"] == "register" else ""
        rows.append(("total", f"{_num(tot['value'])} {tot['unit'] or ''}{note}".strip()))
    elif s["peak"]:
        rows.append(("peak / mean", f"{_num(s['peak']['value'])} / {_num(s['mean']['value'])} "
                                    f"{s['peak']['unit'] or ''} (not summed)"))  # fmt: skip
    if s["cost"]:
        c = s["cost"]
        rows.append(("cost", f"{_num(c['total'], 2)} {c['currency'] or '(no currency)'}"))
    rows.append(("gaps", _gaps_text(s["gaps"])))
    if s["overlaps"]:
        rows.append(("overlaps", f"{s['overlaps']} reading(s) overlap the next one"))
    d = s["duplicates"]
    if d["extra_readings"]:
        dup = f"{d['extra_readings']} reading(s) dropped, repeating {d['starts']} start(s)"
        dup += (
            f", values differ at {d['conflicting']} (last kept)"
            if d["conflicting"]
            else ", same values"
        )
    else:
        dup = "none"
    rows.append(("duplicates", dup))
    rows.append(("DST", _dst_text(s["dst_days"])))
    tz = up["time_zone"]
    if up["time_zone_problems"]:
        tz += " — " + "; ".join(up["time_zone_problems"])
    rows.append(("time zone", tz))
    if s["zero_duration"]:
        rows.append(("zero-duration", f"{s['zero_duration']} reading(s)"))
    if s["outside_block"]:
        rows.append(("outside block", f"{s['outside_block']} reading(s)"))
    _kv(console, f"Usage point {up['id']} · MeterReading {s['meter_reading']}", rows)


def _coverage_text(cov: Mapping[str, Any]) -> str:
    """``2019-10-16 00:00 → 2019-10-18 00:00 local (UTC-07:00), 2 days``."""
    start, end = cov["start_local"], cov["end_local"]
    off_a, off_b = start[19:], end[19:]
    offsets = f"UTC{off_a}" if off_a == off_b else f"UTC{off_a} → UTC{off_b}"
    span = _span(cov["seconds"])
    return (
        f"{start[:16].replace('T', ' ')} → {end[:16].replace('T', ' ')} local ({offsets}), {span}"
    )


def _lengths_text(lengths: Mapping[str, int]) -> str:
    """``1 h ×48``; billing periods of many lengths collapse to their range."""
    items = sorted((int(k), v) for k, v in lengths.items())
    if len(items) > 4:
        lo, hi = analysis.format_duration(items[0][0]), analysis.format_duration(items[-1][0])
        total = sum(v for _, v in items)
        return f"{lo} to {hi} ({len(items)} different lengths, {total:,} readings)"
    return ", ".join(f"{analysis.format_duration(k)} ×{v:,}" for k, v in items)


def _gaps_text(g: Mapping[str, Any]) -> str:
    if not g["count"]:
        return "none"
    if g["missing_intervals"]:
        text = (
            f"{g['count']} gap(s), {g['missing_intervals']:,} interval(s) missing "
            f"({_span(g['missing_seconds'])})"
        )
    else:
        text = f"{g['count']} gap(s) shorter than one interval ({_span(g['missing_seconds'])})"
    shown = [f"{x['from']} → {x['to']}" for x in g["list"][:_SHOWN_GAPS]]
    if g["count"] > _SHOWN_GAPS:
        shown.append(f"… {g['count'] - _SHOWN_GAPS} more (--json lists all)")
    return text + ": " + "; ".join(shown)


def _dst_text(days: Sequence[Mapping[str, Any]]) -> str:
    if not days:
        return "no DST transition day in the data"
    parts = []
    for d in days:
        state = "complete" if d["complete"] else f"{_num(d['data_hours'])} h of readings"
        parts.append(
            f"{d['date']}: {_num(d['day_hours'])}-hour day, {d['readings']} reading(s), {state}"
        )
    return "; ".join(parts)


def _summaries_table(console: Console, summaries: Sequence[Mapping[str, Any]]) -> None:
    t = _table("Usage summaries", "billing period (UTC)", "bill", "to date", "consumption")
    for us in summaries:
        period = f"{_short(us['billing_period_start'])} → {_short(us['billing_period_end'])}"
        cur = us["currency"] or ""
        consumption = "; ".join(
            f"{k.replace('_', ' ')}: {_num(m['value'])} {m['unit'] or ''}".strip()
            for k, m in us["measurements"].items()
        )
        t.add_row(
            escape(period),
            _money(us["bill_last_period"], cur),
            _money(us["bill_to_date"], cur),
            escape(consumption or "-"),
        )
    console.print(t)


def _ltp_rows(ltp: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("tzOffset", str(ltp["tz_offset"])),
        ("dstOffset", str(ltp["dst_offset"])),
        ("DST starts", f"{ltp['dst_start_rule']} = {ltp['dst_start'] or '?'}"),
        ("DST ends", f"{ltp['dst_end_rule']} = {ltp['dst_end'] or '?'}"),
        ("IANA zone", ltp["iana"] or "none matches"),
    ]
    if ltp["problems"]:
        rows.append(("problems", "; ".join(ltp["problems"])))
    return rows


def _auth_rows(a: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [("status", str(a["status"] if a["status"] is not None else "-"))]
    for key, label in (
        ("scope", "scope"),
        ("resource_uri", "resourceURI"),
        ("authorization_uri", "authorizationURI"),
        ("customer_resource_uri", "customerResourceURI"),
        ("expires_at", "expires at"),
        ("grant_type", "grant type"),
        ("token_type", "token type"),
        ("error", "error"),
        ("error_description", "error description"),
    ):
        if a[key]:
            rows.append((label, str(a[key])))
    for key, label in (("authorized_period", "authorized"), ("published_period", "published")):
        p = a[key]
        if p:
            rows.append((label, f"{p['start']} → {p['end'] or 'open-ended'}"))
    return rows


def _app_rows(a: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, label in (
        ("title", "title"),
        ("third_party_application_name", "application"),
        ("data_custodian_id", "data custodian"),
        ("status", "status"),
        ("client_id", "client id"),
        ("client_id_issued_at", "client id issued"),
        ("token_endpoint_auth_method", "token auth method"),
    ):
        if a[key]:
            rows.append((label, str(a[key])))
    for key, url in a["endpoints"].items():
        if url:
            rows.append((f"{key.replace('_', ' ')} endpoint", url))
    for key in ("redirect_uris", "scopes", "grant_types"):
        if a[key]:
            rows.append((key.replace("_", " ").rstrip("s") + "s", ", ".join(a[key])))
    return rows


def _money(value: float | None, currency: str) -> str:
    return "-" if value is None else f"{_num(value, 2)} {currency}".strip()


def _short(iso: str | None) -> str:
    """``2019-10-16T00:00:00-07:00`` -> ``2019-10-16 00:00 -07:00``."""
    if not iso:
        return "?"
    text = iso.replace("T", " ")
    if text.endswith("Z"):
        return text[:16] + " UTC"
    return text[:16] + " " + text[19:] if len(text) > 19 else text[:16]


def _span(seconds: int) -> str:
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds // 86400:,} days"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:,.1f} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds / 3600:.2f} h"
