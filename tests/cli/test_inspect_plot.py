"""``greenbutton inspect`` and ``greenbutton plot`` on real fixtures.

Totals are checked against sums computed here straight from the XML text (not through the
parser), DST days against the calendar, and the outputs against what a viewer needs: a PNG
signature, a well-formed SVG, an HTML page that fetches nothing.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from click.testing import CliRunner, Result

import greenbutton
from greenbutton.analysis import _summary as analysis
from greenbutton.cli import cli
from tests.conftest import FIXTURES

PGE = FIXTURES / "pge_smd_bulk_day_2019-10-16.xml"
DST_SPRING = FIXTURES / "gba_demo_hourly_2011-03_dst_spring.xml"
NET_1MIN = FIXTURES / "gba_meter_data_1min_2014-01-06_week.xml"
GAS = FIXTURES / "gba_gas_monthly_therm.xml"
YEAR = FIXTURES / "gba_demo_coastal_single_family_2011_hourly.xml"
OPOWER = FIXTURES / "opower_gas_billing_2021-2024_monthly.xml"
SDGE = FIXTURES / "sdge_dmd_2019-10_hourly.xml"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "http://www.w3.org/2000/svg"
# Wide enough that Rich never wraps a fact across lines; no forced colour codes.
ENV = {"COLUMNS": "200", "FORCE_COLOR": None, "NO_COLOR": "1"}


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=ENV)


def inspect_json(*paths: Path) -> list[dict[str, Any]]:
    result = run("inspect", "--json", *paths)
    assert result.exit_code == 0, result.output
    files: list[dict[str, Any]] = json.loads(result.stdout)["files"]
    return files


def only_series(report: dict[str, Any]) -> dict[str, Any]:
    (up,) = report["usage_points"]
    (series,) = up["meter_readings"]
    return series


def xml_values(path: Path, tag: str) -> list[int]:
    """Every ``<tag>`` integer inside an IntervalReading, read with regexes: an oracle
    independent of the parser (summaries elsewhere in the file carry values too)."""
    text = path.read_text(encoding="utf-8")
    readings = re.findall(r"<(?:\w+:)?IntervalReading>(.*?)</(?:\w+:)?IntervalReading>", text, re.S)
    return [int(v) for r in readings for v in re.findall(rf"<(?:\w+:)?{tag}>\s*(-?\d+)\s*</", r)]


# --- inspect ----------------------------------------------------------------------------


def test_inspect_pge_facts() -> None:
    (report,) = inspect_json(PGE)
    assert report["root"] == "feed"
    (up,) = report["usage_points"]
    assert up["id"] == "5391320451"
    assert up["service_kind"] == "electricity"
    assert up["time_zone"].startswith("America/Los_Angeles")
    s = only_series(report)
    assert s["reading_type"] == "Wh ×10^-3, forward, 1 h"
    assert s["readings"] == 48
    # 48 hourly values of Wh x 10^-3, in kWh: sum / 10^6.
    assert s["total"] == {"value": sum(xml_values(PGE, "value")) / 10**6, "unit": "kWh",
                          "basis": "sum"}  # fmt: skip
    assert s["total"]["value"] == pytest.approx(59.526899)
    assert s["coverage"]["start"] == "2019-10-16T07:00:00Z"
    assert s["coverage"]["end"] == "2019-10-18T07:00:00Z"
    assert s["coverage"]["start_local"] == "2019-10-16T00:00:00-07:00"
    assert s["gaps"]["count"] == 0
    assert s["duplicates"]["extra_readings"] == 0
    assert s["dst_days"] == []
    assert s["interval_lengths"] == {"3600": 48}


def test_inspect_pge_human_output() -> None:
    result = run("inspect", PGE)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for fact in (
        "5391320451",
        "electricity",
        "Wh ×10^-3, forward, 1 h",
        "59.527 kWh",
        "2019-10-16 00:00 → 2019-10-18 00:00 local (UTC-07:00), 2 days",
        "America/Los_Angeles",
        "tou 1: SPK Summer Peak",  # PG&E's ProgramIdMappings decode the tou codes
    ):
        assert fact in out, fact


def test_inspect_matches_the_readings_table() -> None:
    """inspect and read_frame (export) agree on the total."""
    (report,) = inspect_json(PGE)
    frame = greenbutton.read_frame(PGE)
    assert only_series(report)["total"]["value"] == pytest.approx(frame["value"].sum() / 1000)


def test_dst_spring_day_is_a_23_hour_day() -> None:
    (report,) = inspect_json(DST_SPRING)
    s = only_series(report)
    assert report["usage_points"][0]["time_zone"].startswith("America/New_York")
    assert s["dst_days"] == [
        {"date": "2011-03-13", "day_hours": 23.0, "data_hours": 23.0, "readings": 23,
         "complete": True},
    ]  # fmt: skip
    assert s["readings"] == 743 == 31 * 24 - 1
    assert s["total"]["value"] == pytest.approx(sum(xml_values(DST_SPRING, "value")) / 1000)
    assert s["cost"]["total"] == pytest.approx(sum(xml_values(DST_SPRING, "cost")) / 10**5)
    assert s["cost"]["currency"] == "USD"
    human = run("inspect", DST_SPRING).stdout
    assert "2011-03-13: 23-hour day, 23 reading(s), complete" in human


def test_year_file_gaps_duplicates_and_dst_quirks() -> None:
    """The GBA year file writes a 2-hour reading in spring, a 0-s reading in the fall and
    repeats two starts with different values: all of it is reported, nothing repaired."""
    (report,) = inspect_json(YEAR)
    s = only_series(report)
    assert s["readings_in_file"] == 8760
    assert s["readings"] == 8758
    assert s["duplicates"] == {"extra_readings": 2, "starts": 2, "conflicting": 2}
    assert s["zero_duration"] == 1
    assert s["interval_lengths"] == {"3600": 8757, "7200": 1}
    assert s["gaps"]["count"] == 1
    assert s["gaps"]["list"] == [
        {"from": "2011-11-06T17:00:00Z", "to": "2011-11-06T18:00:00Z", "missing": 1}
    ]
    spring, fall = s["dst_days"]
    assert (spring["date"], spring["day_hours"], spring["complete"]) == ("2011-03-13", 23, True)
    assert (fall["date"], fall["day_hours"], fall["data_hours"]) == ("2011-11-06", 25, 24)
    assert not fall["complete"]
    assert any("25-hour local day" in w for w in report["warnings"])
    assert any("different values" in w for w in report["warnings"])


def test_gaps_in_monthly_billing_file() -> None:
    """Opower's billing export has three gaps between periods (SOURCES.md) and no
    LocalTimeParameters, which inspect says."""
    (report,) = inspect_json(OPOWER)
    s = only_series(report)
    assert s["gaps"]["count"] == 3
    assert s["total"] == {"value": sum(xml_values(OPOWER, "value")) / 1000, "unit": "therm",
                          "basis": "sum"}  # fmt: skip
    assert report["usage_points"][0]["time_zone"] == "UTC (no LocalTimeParameters)"
    assert any("local days are UTC days" in w for w in report["warnings"])
    assert "3 gap(s)" in run("inspect", OPOWER).stdout


def test_gas_therms_and_cost() -> None:
    (report,) = inspect_json(GAS)
    assert report["usage_points"][0]["service_kind"] == "gas"
    s = only_series(report)
    assert s["reading_type"].startswith("therm ×10^-3, forward")
    assert s["total"]["unit"] == "therm"
    assert s["total"]["value"] == pytest.approx(sum(xml_values(GAS, "value")) / 1000)
    assert s["total"]["value"] == pytest.approx(1081.119)
    assert s["cost"]["total"] == pytest.approx(sum(xml_values(GAS, "cost")) / 10**5)
    assert "1,081.119 therm" in run("inspect", GAS).stdout


def test_net_metered_register_labelled_series() -> None:
    """Delivered and received MeterReadings share starts (not duplicates); both say
    accumulationBehaviour 1 but hold per-interval amounts, which inspect warns about."""
    (report,) = inspect_json(NET_1MIN)
    (up,) = report["usage_points"]
    flows = [s["flow_direction"] for s in up["meter_readings"]]
    assert flows == ["forward", "reverse"]
    for s in up["meter_readings"]:
        assert s["readings"] == 10080
        assert s["duplicates"]["extra_readings"] == 0
        assert s["interval_lengths"] == {"60": 10080}
        assert s["accumulation"] == "bulk_quantity"
        assert any("register readings" in w for w in s["warnings"])


def test_time_zone_problems_are_reported() -> None:
    (report,) = inspect_json(SDGE)
    (up,) = report["usage_points"]
    assert any("tzOffset is 0" in p for p in up["time_zone_problems"])
    assert sum("tzOffset is 0" in w for w in report["warnings"]) == 1  # said once
    (sce,) = inspect_json(FIXTURES / "sce_bulk_usagesummary_and_intervalblock.xml")
    assert any(
        "'B60E' cannot be decoded" in p for p in sce["usage_points"][0]["time_zone_problems"]
    )


def test_inspect_non_usage_documents() -> None:
    auth, app, summaries, customer = inspect_json(
        FIXTURES / "pge_authorization_entry.xml",
        FIXTURES / "pge_applicationinformation_entry.xml",
        FIXTURES / "pge_usagesummary_feed.xml",
        FIXTURES / "pge_retailcustomer_feed.xml",
    )
    (a,) = auth["authorizations"]
    assert a["status"] == "active"
    assert a["scope"].startswith("FB=1_3_4_5_8_13_14")
    assert a["resource_uri"].endswith("/resource/Subscription/0")
    (info,) = app["application_information"]
    assert info["client_id"] == "verdigris"
    assert info["status"] == "production"
    assert info["endpoints"]["token"].endswith("/datacustodian/oauth/v2/token")
    bills = [s["bill_last_period"] for s in summaries["usage_summaries"]]
    assert bills[0] == pytest.approx(233.64)
    elements = [c["element"] for c in customer["customer_resources"]]
    assert elements == ["Customer", "ServiceLocation", "CustomerAccount", "CustomerAgreement",
                        "Meter"]  # fmt: skip
    human = run(
        "inspect",
        FIXTURES / "pge_authorization_entry.xml",
        FIXTURES / "pge_applicationinformation_entry.xml",
    ).stdout
    assert "active" in human
    assert "resourceURI" in human
    assert "verdigris" in human


def test_inspect_never_prints_application_secrets() -> None:
    path = FIXTURES / "gba_applicationinformation_sample.xml"
    secrets = re.findall(r"<(?:\w+:)?(?:client_secret|registration_access_token)>([^<]+)<",
                         path.read_text(encoding="utf-8"))  # fmt: skip
    assert secrets, "the fixture should carry a secret for this test to mean anything"
    for args in (("inspect", path), ("inspect", "--json", path)):
        out = run(*args).output
        for secret in secrets:
            assert secret.strip() not in out


def test_inspect_service_status_and_batch_list(tmp_path: Path) -> None:
    status = tmp_path / "status.xml"
    status.write_text('<ServiceStatus xmlns="http://naesb.org/espi"><currentStatus>1'
                      "</currentStatus></ServiceStatus>", encoding="utf-8")  # fmt: skip
    batch = tmp_path / "batch.xml"
    uri = "https://utility.example/espi/1_1/resource/Batch/Subscription/5"
    batch.write_text(f'<BatchList xmlns="http://naesb.org/espi"><resources>{uri}</resources>'
                     "</BatchList>", encoding="utf-8")  # fmt: skip
    s, b = inspect_json(status, batch)
    assert s["service_status"] == {"available": True}
    assert b["batch_list"] == [uri]
    human = run("inspect", status, batch).stdout
    assert "ServiceStatus: available" in human
    assert uri in human


def test_inspect_several_files_in_one_json() -> None:
    reports = inspect_json(PGE, GAS)
    assert [Path(r["file"]).name for r in reports] == [PGE.name, GAS.name]


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["inspect", "plot"])
def test_bad_file_is_one_error_line(command: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("this is not XML", encoding="utf-8")
    result = CliRunner().invoke(cli, [command, str(bad)], env=ENV)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert "bad.xml" in lines[0]
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*.png"))


def test_missing_file_is_one_error_line(tmp_path: Path) -> None:
    result = run("inspect", tmp_path / "nope.xml")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_plot_without_matplotlib_gives_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    monkeypatch.delitem(sys.modules, "greenbutton.analysis._charts", raising=False)
    monkeypatch.delattr(greenbutton.analysis, "_charts", raising=False)
    monkeypatch.chdir(tmp_path)
    result = run("plot", PGE)
    assert result.exit_code == 1
    assert (
        result.stderr.strip() == "error: plotting needs matplotlib: pip install 'greenbutton[plot]'"
    )
    assert "Traceback" not in result.output


def test_plot_heatmap_of_monthly_data_says_what_to_do(tmp_path: Path) -> None:
    result = run("plot", GAS, "--kind", "heatmap", "-o", tmp_path / "gas.png")
    assert result.exit_code == 1
    assert "error: " in result.stderr
    assert "--kind daily" in result.stderr


# --- plot --------------------------------------------------------------------------------


def test_plot_png_default_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("plot", PGE)
    assert result.exit_code == 0, result.output
    out = tmp_path / "pge_smd_bulk_day_2019-10-16.png"
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    assert str(out.name) in result.stdout


def test_plot_svg_is_well_formed(tmp_path: Path) -> None:
    out = tmp_path / "week.svg"
    result = run("plot", NET_1MIN, "-o", out)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    root = xmlschema.XMLResource(data).root  # a safe, well-formedness-checking parse
    assert root.tag == f"{{{SVG_NS}}}svg"
    text = data.decode()
    # Net-metered: the legend names import, export and the net line.
    for label in ("import", "export", "net (import − export)"):
        assert "<!-- " + label in text or label in text


def test_plot_html_is_standalone(tmp_path: Path) -> None:
    out = tmp_path / "dst.html"
    result = run("plot", DST_SPRING, "--format", "html", "-o", out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1
    assert set(re.findall(r"https?://[^\s\"'<>)]*", page)) == {SVG_NS}
    # Anything the page points at is inline data or a fragment within it.
    targets = re.findall(r"(?:href|src)\s*=\s*[\"']([^\"']*)", page)
    assert targets and all(t.startswith(("data:", "#")) for t in targets)
    assert "url(" not in page.replace("url(#", "")
    assert "<script" not in page
    assert "<link" not in page
    assert "2,278.213 kWh" in page  # the facts above the chart


@pytest.mark.parametrize("kind", ["daily", "heatmap", "profile"])
def test_plot_each_kind(kind: str, tmp_path: Path) -> None:
    result = run("plot", PGE, "--kind", kind, "-o", tmp_path)
    assert result.exit_code == 0, result.output
    out = tmp_path / f"{PGE.stem}-{kind}.png"
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_several_files_need_a_directory(tmp_path: Path) -> None:
    result = run("plot", PGE, GAS, "-o", tmp_path / "one.png")
    assert result.exit_code == 2
    result = run("plot", PGE, GAS, "--kind", "daily", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {
        f"{PGE.stem}-daily.png",
        f"{GAS.stem}-daily.png",
    }


# --- the chart and analysis building blocks ------------------------------------------------


def test_net_metered_groups_and_chart_from_a_frame() -> None:
    """charts.groups_from_frame (for stored data) sees what groups_from_document sees."""
    from greenbutton.analysis import _charts as charts

    doc = greenbutton.parse(NET_1MIN)
    (group,) = charts.groups_from_document(doc)
    assert group.net_metered
    assert [s.flow for s in group.series] == ["import", "export"]
    assert group.unit == "Wh"  # 0.008 kWh a day reads better as 8 Wh
    tz, label, _ = analysis.time_zone_for(doc, doc.usage_points[0])
    (from_frame,) = charts.groups_from_frame(greenbutton.read_frame(NET_1MIN), tz=tz,
                                             time_zone=label)  # fmt: skip
    assert from_frame.net_metered and from_frame.unit == "Wh"
    for a, b in zip(group.series, from_frame.series, strict=True):
        days_a = [(d.day, round(d.total, 9)) for d in analysis.daily_totals(a.values)]
        days_b = [(d.day, round(d.total, 9)) for d in analysis.daily_totals(b.values)]
        assert days_a == days_b
        assert len(days_a) == 7


def test_daily_totals_follow_local_days_across_dst() -> None:
    doc = greenbutton.parse(DST_SPRING)
    up = doc.usage_points[0]
    tz, _, _ = analysis.time_zone_for(doc, up)
    days = analysis.daily_totals(analysis.series_values(up.meter_readings[0], tz))
    assert len(days) == 31
    by_day = {d.day.isoformat(): d for d in days}
    assert by_day["2011-03-13"].day_hours == 23
    assert by_day["2011-03-13"].complete
    assert all(d.complete for d in days)
    assert sum(d.total for d in days) == pytest.approx(sum(xml_values(DST_SPRING, "value")) / 1000)
