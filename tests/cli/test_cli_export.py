"""``greenbutton export`` and the package surface: contracts other tools rely on."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import greenbutton
from greenbutton.cli import cli
from tests.conftest import FIXTURES

PGE = FIXTURES / "pge_smd_bulk_day_2019-10-16.xml"
GAS = FIXTURES / "gba_gas_monthly_therm.xml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_all_is_sorted_and_complete() -> None:
    assert list(greenbutton.__all__) == sorted(greenbutton.__all__)
    for name in greenbutton.__all__:
        assert hasattr(greenbutton, name), name
    public = {n for n in vars(greenbutton) if not n.startswith("_")}
    modules = {
        "analysis",
        "cli",
        "client",
        "models",
        "parse",
        "table",
        "simulator",
        "espi",
        "oauth",
        "classic",
        "storage",
        "web",
    }
    assert public - modules - set(greenbutton.__all__) == set()


def test_csv_has_exactly_the_readings_table_columns() -> None:
    code, out, _ = run("export", str(PGE))
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert tuple(rows[0]) == greenbutton.COLUMNS == (
        "usage_point", "meter_reading", "start", "duration", "raw_value", "value", "uom",
        "flow_direction", "kind", "commodity", "interval_length", "cost", "currency",
        "quality", "tou",
    )  # fmt: skip
    assert len(rows) == 1 + 48
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["start"] == "2019-10-16T07:00:00Z"
    assert first["usage_point"] == "Subscription/4095251/UsagePoint/5391320451"
    assert first["raw_value"] == "1059900"
    assert float(first["value"]) == 1059.9
    assert (first["uom"], first["flow_direction"], first["kind"]) == ("Wh", "forward", "energy")
    assert (first["quality"], first["tou"], first["cost"]) == ("19", "6", "")


def test_jsonl_matches_csv() -> None:
    _, out_csv, _ = run("export", str(GAS))
    code, out_jsonl, _ = run("export", str(GAS), "--format", "jsonl")
    assert code == 0
    records = [json.loads(line) for line in out_jsonl.splitlines()]
    table = list(csv.DictReader(io.StringIO(out_csv)))
    assert len(records) == len(table) == 13
    assert records[0]["start"] == table[0]["start"]
    assert records[0]["cost"] == pytest.approx(float(table[0]["cost"]))
    assert records[0]["currency"] == "USD" and records[0]["uom"] == "therm"


def test_parquet_equals_read_frame(tmp_path: Path) -> None:
    out = tmp_path / "gas.parquet"
    code, _, err = run("export", str(GAS), "-o", str(out))
    assert code == 0 and "wrote 13 readings" in err
    got = pd.read_parquet(out)
    frame = greenbutton.read_frame(GAS)
    assert list(got.columns) == list(greenbutton.COLUMNS)
    assert (got["start"] == frame["start"]).all()
    assert got["value"].tolist() == frame["value"].tolist()
    assert got["raw_value"].tolist() == frame["raw_value"].tolist()


def test_read_frame_start_is_utc_and_values_scaled() -> None:
    frame = greenbutton.read_frame(PGE)
    assert str(frame["start"].dt.tz) == "UTC"
    assert frame["value"].sum() == pytest.approx(frame["raw_value"].sum() / 1000)
    rows = list(greenbutton.iter_readings(PGE))
    assert [r.value for r in rows] == frame["value"].tolist()


def test_failed_export_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(PGE.read_bytes()[:5000])
    out = tmp_path / "out.csv"
    code, _, err = run("export", str(PGE), str(bad), "-o", str(out))
    assert code == 1
    assert err.startswith("error: ") and "truncated" in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [bad]


def test_parquet_needs_an_output_file() -> None:
    code, _, err = run("export", str(GAS), "--format", "parquet")
    assert code == 2 and "-o" in err


def test_python_dash_m_is_the_same_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "greenbutton", "export", str(GAS), "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 13


def test_missing_file_is_one_error_line() -> None:
    """The command line was right; the file is not there (issue 12.4: exit 1, not 2)."""
    code, _, err = run("export", "/nonexistent/file.xml")
    assert code == 1 and err == "error: No such file or directory: /nonexistent/file.xml\n"


def test_missing_output_folder_is_named(tmp_path: Path) -> None:
    """One error line naming the missing folder, not the writer's temporary file."""
    out = tmp_path / "nowhere" / "gas.csv"
    code, _, err = run("export", str(GAS), "-o", str(out))
    assert code == 1
    assert err == f"error: cannot write gas.csv: no such folder: {out.parent}\n"
    assert not (tmp_path / "nowhere").exists()
