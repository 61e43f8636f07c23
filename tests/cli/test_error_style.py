"""One error style for every command's mistakes (issue 12.4, DESIGN 3.2): one ``error:``
line on stderr and exit 1 (usage errors: click's usage text and exit 2), no traceback, no
temporary file name; compressed downloads are read, not refused.

The table is the contract: each row is a command line run in a folder prepared by
:func:`_folder`, the exit status it must end with, and a pattern its stderr must match.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from greenbutton.cli import cli
from tests.conftest import FIXTURES

SAMPLE = FIXTURES / "gba_demo_hourly_32days.xml"
OTHER = FIXTURES / "gba_demo_hourly_32days_nocost.xml"
ONE_LINE = r"error: [^\n]+\n"

#: (command line, exit status, stderr pattern, stdout pattern or None)
CASES: list[tuple[str, int, str, str | None]] = [
    # files that are not there, or are not files
    ("inspect nope.xml", 1, r"error: No such file or directory: nope\.xml\n", None),
    ("export nope.xml", 1, r"error: No such file or directory: nope\.xml\n", None),
    ("plot nope.xml", 1, r"error: No such file or directory: nope\.xml\n", None),
    ("inspect folder", 1, r"error: folder is a folder: name the files in it[^\n]*\n", None),
    ("export folder", 1, r"error: folder is a folder[^\n]*\n", None),
    ("inspect empty.xml", 1, r"error: empty\.xml: the file is empty \(0 bytes\)[^\n]*\n", None),
    ("export empty.xml", 1, r"error: empty\.xml: the file is empty[^\n]*\n", None),
    (
        "inspect notes.txt",
        1,
        r"error: notes\.txt: line 1: this is not an XML document[^\n]*\n",
        None,
    ),
    # compressed downloads are read as they come
    ("inspect usage.xml.gz", 0, r"", r"768"),
    ("inspect one.zip", 0, r"", r"768"),
    ("inspect both.zip", 0, r"", r"both\.zip/gba_demo_hourly_32days\.xml.*both\.zip/other\.xml"),
    ("export both.zip -o both.csv", 0, r"wrote 1536 readings to both\.csv\n", None),
    ("inspect damaged.zip", 1, r"error: damaged\.zip: the zip archive is damaged[^\n]*\n", None),
    ("inspect nothing.zip", 1, r"error: nothing\.zip: the zip archive holds no \.xml file\n", None),
    # outputs and databases
    (
        "export usage.xml -o missing/out.csv",
        1,
        r"error: cannot write out\.csv: no such folder: missing\n",
        None,
    ),
    ("accounts --database gb.db", 0, r"", r"nothing stored yet"),
    ("export --db gb.db", 0, r"", r"^usage_point,"),
    (
        "accounts --database foo://db",
        1,
        r"error: [^\n]*not 'foo': use sqlite:///PATH[^\n]*\n",
        None,
    ),
    (
        "export --db nodir/gb.db",
        1,
        r"error: no folder [^\n]*nodir for the SQLite database[^\n]*\n",
        r"^$",
    ),
    # usage errors keep click's usage text and exit 2
    (
        "inspect --nope usage.xml",
        2,
        r"Usage: greenbutton inspect[\s\S]*No such option:? '?--nope",
        None,
    ),
    ("export usage.xml --format nope", 2, r"Usage: greenbutton export[\s\S]*Invalid value", None),
]


def _folder(root: Path) -> Path:
    shutil.copy(SAMPLE, root / "usage.xml")
    (root / "folder").mkdir()
    (root / "empty.xml").write_bytes(b"")
    (root / "notes.txt").write_text("not xml\n")
    (root / "usage.xml.gz").write_bytes(gzip.compress(SAMPLE.read_bytes()))
    with zipfile.ZipFile(root / "one.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.write(SAMPLE, SAMPLE.name)
    with zipfile.ZipFile(root / "both.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.write(SAMPLE, SAMPLE.name)
        z.write(OTHER, "other.xml")
        z.writestr("__MACOSX/._other.xml", b"\x00\x05\x16\x07")  # Finder litter: skipped
    with zipfile.ZipFile(root / "nothing.zip", "w") as z:
        z.writestr("readme.txt", "no data here")
    (root / "damaged.zip").write_bytes((root / "one.zip").read_bytes()[:200])
    return root


@pytest.mark.parametrize(("line", "status", "stderr", "stdout"), CASES, ids=[c[0] for c in CASES])
def test_error_style(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    line: str,
    status: int,
    stderr: str,
    stdout: str | None,
) -> None:
    monkeypatch.chdir(_folder(tmp_path))
    result = CliRunner().invoke(cli, line.split(), prog_name="greenbutton")
    assert result.exit_code == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.output + result.stderr
    assert ".part" not in result.stderr
    if status == 1:
        assert re.fullmatch(ONE_LINE, result.stderr), result.stderr  # exactly one line
    assert re.match(stderr, result.stderr) if stderr else result.stderr == "", result.stderr
    if stdout is not None:
        assert re.search(stdout, result.stdout, re.S | re.M), result.stdout
    assert not list(tmp_path.glob("**/*.part"))  # nothing half-written is left


def test_export_of_both_members_holds_both_files_rows(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    result = CliRunner().invoke(
        cli, ["export", str(folder / "both.zip"), "-o", str(folder / "b.csv")]
    )
    assert result.exit_code == 0, result.stderr
    rows = (folder / "b.csv").read_text().splitlines()
    assert len(rows) == 1 + 768 + 768  # header, then each member's hourly readings


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``greenbutton export big.xml | head -1``: no message once the reader has gone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENBUTTON_")}
    export = subprocess.Popen(
        [sys.executable, "-m", "greenbutton", "export", str(SAMPLE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert export.stdout is not None and export.stderr is not None
    first = export.stdout.readline()
    export.stdout.close()  # what `head -1` does after one line
    err = export.stderr.read()
    export.stderr.close()
    export.wait(timeout=60)
    assert first.startswith(b"usage_point,")
    assert err == b"", err
    assert export.returncode in (0, 1)
