"""Hatchling build hook: compile the optional C accelerator ``greenbutton.parse._cblocks``.

The accelerator is Cython code that walks lxml's libxml2 tree directly (see the module's
docstring); everything works without it, only parsing is slower. So a failed compile (no C
compiler, no Python headers) prints a warning and the build goes on as pure Python.

* editable installs (``pip install -e .``): the extension is built against the running
  Python and copied next to its source in ``src/greenbutton/parse/`` (gitignored), where the
  editable path finds it. Re-run the install after changing ``_cblocks.pyx``; ``make``
  does it when the file is newer than the install.
* wheels: the extension goes into the wheel (``force_include``), which is then tagged for
  this interpreter and platform instead of ``py3-none-any``.

``GREENBUTTON_NO_EXTENSION=1`` skips the compile (a pure-Python wheel or install).
"""

from __future__ import annotations

import os
import shutil
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "greenbutton.parse._cblocks"
PYX = Path("src", "greenbutton", "parse", "_cblocks.pyx")


def _suffix() -> str:
    return str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def compile_extension(root: Path, work: Path) -> Path:
    """Cythonize and compile the extension in ``work``; return the built file."""
    import lxml
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    ext = Extension(
        MODULE,
        [str(root / PYX)],
        include_dirs=lxml.get_include(),
        # Only struct fields of libxml2 are read: nothing to link against.
    )
    modules = cythonize(
        [ext],
        build_dir=str(work / "c"),
        force=True,
        quiet=True,
        compiler_directives={"language_level": 3},
    )
    dist = Distribution({"name": "greenbutton-accelerator", "ext_modules": modules})
    cmd: Any = dist.get_command_obj("build_ext")
    cmd.build_lib = str(work / "lib")
    cmd.build_temp = str(work / "tmp")
    cmd.inplace = False
    cmd.ensure_finalized()
    cmd.run()
    built = Path(cmd.get_ext_fullpath(MODULE))
    if not built.is_file():  # pragma: no cover - build_ext raises first
        raise RuntimeError(f"build_ext reported success but {built} is missing")
    return built


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Builds the accelerator for the wheel target (standard and editable)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        target = root / PYX.parent / f"_cblocks{_suffix()}"
        if version == "editable":
            # Never leave an extension built from an older _cblocks.pyx on the path.
            target.unlink(missing_ok=True)
        if os.environ.get("GREENBUTTON_NO_EXTENSION", "") not in ("", "0"):
            self._warn("GREENBUTTON_NO_EXTENSION is set: not compiling the C accelerator")
            return
        self._work = Path(tempfile.mkdtemp(prefix="greenbutton-ext-"))
        try:
            built = compile_extension(root, self._work)
        except Exception as exc:  # any failure: fall back to pure Python, loudly
            self._warn(
                f"could not compile the C accelerator {MODULE} ({type(exc).__name__}: {exc}); "
                "greenbutton will work in pure Python, parsing large files ~3x slower"
            )
            return
        if version == "editable":
            shutil.copy2(built, target)
        else:
            build_data["force_include"][str(built)] = f"greenbutton/parse/{built.name}"
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)

    def _warn(self, message: str) -> None:
        # pip shows a build's output only with -v (or when the build fails).
        self.app.display_warning(f"WARNING: greenbutton: {message}")
