"""The library's readings writers (``_writers.write_readings``): the formats ``export``
writes, usable without the CLI, written atomically, one Parquet writer for all callers."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from greenbutton import iter_readings, parse, read_frame
from greenbutton.models._rows import COLUMNS, Reading
from greenbutton.table import _frames as frames
from greenbutton.table._files import document_rows, format_for, write_readings
from tests.conftest import FIXTURES

GAS = FIXTURES / "gba_gas_monthly_therm.xml"
PGE = FIXTURES / "pge_smd_bulk_day_2019-10-16.xml"


def test_csv_to_a_path_is_the_readings_table(tmp_path: Path) -> None:
    out = tmp_path / "pge.csv"
    assert write_readings(iter_readings(PGE), out) == 48
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 49
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["start"] == "2019-10-16T07:00:00Z" and first["raw_value"] == "1059900"
    assert first["cost"] == ""  # missing values are empty cells, not "None"


def test_jsonl_to_binary_and_text_file_objects_match(tmp_path: Path) -> None:
    """A binary file gets UTF-8 text and stays open for the caller."""
    binary, text = io.BytesIO(), io.StringIO()
    assert write_readings(iter_readings(GAS), binary, format="jsonl") == 13
    assert not binary.closed
    write_readings(iter_readings(GAS), text, format="jsonl")
    assert binary.getvalue().decode() == text.getvalue()
    records = [json.loads(line) for line in text.getvalue().splitlines()]
    assert list(records[0]) == list(COLUMNS)
    assert records[0]["uom"] == "therm" and records[0]["currency"] == "USD"


def test_format_follows_the_suffix() -> None:
    assert format_for("a.parquet") == format_for("a.PQ") == "parquet"
    assert format_for("a.ndjson") == format_for(Path("a.jsonl")) == "jsonl"
    assert format_for("a.txt") == format_for(None) == "csv"


def test_one_parquet_writer_for_export_and_frames(tmp_path: Path) -> None:
    """frames.write_parquet and write_readings write the same file, equal to read_frame."""
    streamed, from_doc = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_readings(iter_readings(GAS), streamed)
    frames.write_parquet(parse(GAS), str(from_doc))
    a, b = pd.read_parquet(streamed), pd.read_parquet(from_doc)
    pd.testing.assert_frame_equal(a, b)
    frame = read_frame(GAS)
    assert list(a.columns) == list(COLUMNS)
    assert (a["start"] == frame["start"]).all()
    assert a["value"].tolist() == frame["value"].tolist()


def test_document_rows_equal_the_streaming_rows() -> None:
    assert list(document_rows(parse(PGE))) == list(iter_readings(PGE))


def test_parquet_needs_a_binary_target() -> None:
    with pytest.raises(TypeError):
        write_readings(iter_readings(GAS), io.StringIO(), format="parquet")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("old\n")

    def rows() -> Iterator[Reading]:
        yield from iter_readings(GAS)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        write_readings(rows(), out)
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_missing_folder_is_named_not_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "out.csv"
    with pytest.raises(FileNotFoundError) as info:
        write_readings(iter_readings(GAS), target)
    assert info.value.filename == str(target.parent)
    assert ".part" not in str(info.value) and "out.csv" in str(info.value)


def test_an_export_is_an_ordinary_file(tmp_path: Path) -> None:
    """The temporary file is 0600; the renamed export gets 0666 less the umask."""
    mask = os.umask(0o022)
    try:
        out = tmp_path / "x.jsonl"
        write_readings(iter_readings(GAS), out)
    finally:
        os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_unknown_format_is_a_configuration_error(tmp_path: Path) -> None:
    from greenbutton import ConfigurationError

    with pytest.raises(ConfigurationError, match="xlsx"):
        write_readings([], tmp_path / "x", format="xlsx")  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())
