"""``--start``/``--end``/``--tz`` on inspect, plot and export (issue 12.5): dates are in the
file's own time zone unless ``--tz`` names one, which then also overrides the zone the file
declares; the library parts are ``Document.between`` and ``Document.with_time_zone``."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import greenbutton
from greenbutton.cli import cli
from tests.conftest import FIXTURES

SAMPLE = FIXTURES / "gba_demo_hourly_32days.xml"  # hourly, America/New_York, April 2012


def _run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="greenbutton")
    return result.exit_code, result.stdout, result.stderr


def _starts(out: str) -> list[str]:
    return [row["start"] for row in csv.DictReader(io.StringIO(out))]


def test_export_window_is_a_local_day_of_the_file() -> None:
    code, out, err = _run("export", SAMPLE, "--start", "2012-04-10", "--end", "2012-04-11")
    assert code == 0, err
    starts = _starts(out)
    assert len(starts) == 24  # one local day of hourly readings
    assert starts[0] == "2012-04-10T04:00:00Z" and starts[-1] == "2012-04-11T03:00:00Z"  # EDT


def test_tz_moves_the_window_and_the_local_days() -> None:
    code, out, _ = _run(
        "export", SAMPLE, "--start", "2012-04-10", "--end", "2012-04-11", "--tz", "UTC"
    )
    assert code == 0
    assert _starts(out)[0] == "2012-04-10T00:00:00Z" and len(_starts(out)) == 24
    code, out, _ = _run("inspect", "--json", SAMPLE, "--tz", "Europe/Paris")
    assert code == 0
    assert "Europe/Paris" in json.dumps(json.loads(out))


def test_inspect_and_plot_take_the_window(tmp_path: Path) -> None:
    code, out, _ = _run("inspect", "--json", SAMPLE, "--start", "2012-04-10", "--end", "2012-04-12")
    assert code == 0
    assert '"readings": 48' in json.dumps(json.loads(out))
    code, _, err = _run("plot", SAMPLE, "--start", "2012-04-10", "-o", tmp_path / "w.svg")
    assert code == 0, err
    assert (tmp_path / "w.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tz", "Mars/Base"), "unknown time zone 'Mars/Base'"),
        (("--start", "2012-05-01", "--end", "2012-04-01"), "--start must be before --end"),
        (("--start", "yesterday"), "Invalid value for '--start'"),
    ],
)
def test_bad_windows_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    code, _, err = _run("inspect", SAMPLE, *args)
    assert code == 2 and message in err


def test_document_between_and_with_time_zone() -> None:
    doc = greenbutton.parse(SAMPLE)
    cut = doc.between(datetime(2012, 4, 10, 4, tzinfo=UTC), datetime(2012, 4, 10, 7, tzinfo=UTC))
    assert [len(mr.readings) for mr in cut.meter_readings] == [3]
    assert len(doc.meter_readings[0].readings) == 768  # the original is unchanged
    assert doc.between().reading_count == 768
    paris = doc.with_time_zone("Europe/Paris")
    up = paris.usage_points[0]
    assert up.local_time_parameters is not None
    assert up.local_time_parameters.time_zone.iana == "Europe/Paris"
    with pytest.raises(ValueError, match="unknown time zone"):
        doc.with_time_zone("Nowhere/Else")
