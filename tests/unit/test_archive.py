"""Compressed Green Button downloads (parse/_archive.py): gzip and zip sources parse like
the XML inside them, a zip of several files lists its members, and a decompression bomb is
refused instead of parsed for ever."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest

import greenbutton
from greenbutton import ParseError, XMLLimitError
from greenbutton.parse import ZipMember, documents
from tests.conftest import FIXTURES

SAMPLE = FIXTURES / "gba_demo_hourly_32days.xml"


def _readings(source: object) -> int:
    doc = greenbutton.parse(source)  # type: ignore[arg-type]
    return sum(len(b.readings) for mr in doc.meter_readings for b in mr.interval_blocks)


def test_gzip_bytes_paths_and_streams_parse_like_the_xml(tmp_path: Path) -> None:
    packed = gzip.compress(SAMPLE.read_bytes())
    (tmp_path / "u.xml.gz").write_bytes(packed)
    want = _readings(SAMPLE)
    assert want == 768
    assert _readings(packed) == want
    assert _readings(tmp_path / "u.xml.gz") == want
    assert _readings(io.BytesIO(packed)) == want
    rows = list(greenbutton.iter_readings(tmp_path / "u.xml.gz"))
    assert len(rows) == want


def test_a_zip_of_one_file_parses_and_a_zip_of_several_lists_them(tmp_path: Path) -> None:
    one, both = tmp_path / "one.zip", tmp_path / "both.zip"
    with zipfile.ZipFile(one, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(SAMPLE, "electric.xml")
    with zipfile.ZipFile(both, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(SAMPLE, "electric.xml")
        z.write(SAMPLE, "gas/gas.xml")
    assert _readings(one) == 768
    assert documents(one) == [ZipMember(str(one), "electric.xml")]
    assert documents(SAMPLE) == [str(SAMPLE)]
    with pytest.raises(ParseError, match=r"holds 2 XML files \(electric\.xml, gas/gas\.xml\)"):
        greenbutton.parse(both)
    members = documents(both)
    assert [str(m) for m in members] == [f"{both}/electric.xml", f"{both}/gas/gas.xml"]
    assert [_readings(m) for m in members] == [768, 768]
    with pytest.raises(ParseError, match="no member 'missing.xml'"):
        greenbutton.parse(ZipMember(str(both), "missing.xml"))


def test_a_decompression_bomb_is_refused(tmp_path: Path) -> None:
    body = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">'
    body += b"<!---->" * (12 * 1024**2) + b"</feed>"  # 84 MB of nothing
    packed = gzip.compress(body, compresslevel=9)
    assert len(body) > 500 * len(packed)
    with pytest.raises(XMLLimitError, match="inflates more than 200 times"):
        greenbutton.parse(packed)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("usage.xml", body)
    with pytest.raises(XMLLimitError, match="inflates more than 200 times"):
        greenbutton.parse(bomb)
