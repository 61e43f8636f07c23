"""``import greenbutton`` is light (issue 13.4, STYLE 1 "the heavy parts sit behind extras"):
parsing a file, in a fresh interpreter, loads no HTTP, database, dataframe or plotting
library; the client stack and the frames are imported at their first use (PEP 562), and
still come from ``greenbutton`` under their public names. No timings here: the command in
the issue (``python -X importtime -c "import greenbutton"``) measures those."""

from __future__ import annotations

import json
import subprocess
import sys

import greenbutton
from tests.conftest import FIXTURES

HEAVY = ("httpx2", "httpcore2", "anyio", "sqlalchemy", "pandas", "pyarrow", "matplotlib")
FIXTURE = FIXTURES / "burlington_hydro_dmd_usage_60min_trimmed.xml"


def _fresh(code: str) -> object:
    """Run ``code`` in a new interpreter (no inherited imports); its last line prints JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def _loaded_after(code: str) -> list[str]:
    heavy = json.dumps(HEAVY)
    found = _fresh(
        f"import json, sys\n{code}\nprint(json.dumps([m for m in {heavy} if m in sys.modules]))"
    )
    assert isinstance(found, list)
    return found


def test_parsing_a_file_loads_none_of_the_heavy_modules() -> None:
    code = f"import greenbutton\ndoc = greenbutton.parse({str(FIXTURE)!r})\nassert doc.usage_points"
    assert _loaded_after(code) == []


def test_reading_rows_and_the_error_tree_load_none_of_them_either() -> None:
    code = (
        "import greenbutton\n"
        f"rows = list(greenbutton.iter_readings({str(FIXTURE)!r}))\n"
        "assert rows and greenbutton.COLUMNS\n"
        "assert issubclass(greenbutton.ParseError, greenbutton.GreenButtonError)\n"
        "dir(greenbutton)"
    )
    assert _loaded_after(code) == []


def test_the_check_sees_a_heavy_import() -> None:
    """The probe itself: the first use of the client loads httpx2, under the public name;
    the module's other public names are claimed and bound at the same time."""
    code = (
        "import greenbutton\nfrom greenbutton import Client\n"
        "assert Client.__module__ == 'greenbutton'\n"
        "assert vars(greenbutton)['AsyncClient'].__module__ == 'greenbutton'\n"
        "assert 'read_frame' not in vars(greenbutton)"
    )
    assert "httpx2" in _loaded_after(code)


def test_lazy_names_are_listed_typed_and_cached() -> None:
    """Every deferred name is in ``__all__`` and ``dir()``, reports the package, and is
    bound on the module after the first access (no second import machinery round)."""
    lazy = set(greenbutton._LAZY)
    assert lazy <= set(greenbutton.__all__) <= set(dir(greenbutton))
    for name in sorted(lazy):
        obj = getattr(greenbutton, name)
        assert vars(greenbutton)[name] is obj
        assert getattr(obj, "__module__", "greenbutton") == "greenbutton", name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        greenbutton.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchName" in str(exc)
    else:
        raise AssertionError("greenbutton.NoSuchName did not raise")
