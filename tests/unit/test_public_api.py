"""The public names of ``import loadgate``: the documented set, each one real."""

from __future__ import annotations

import subprocess
import sys

import loadgate

PUBLIC = {
    "SCHEMA", "DepDownError", "LoadgateError", "Profile", "Result", "RunObserver",
    "RunOptions", "SweepResult", "UsageError", "__version__", "bundled_profiles",
    "compare_results", "load_history", "load_profile", "load_result", "load_run_result",
    "new_run_dir", "parse_profile", "run", "run_ab", "run_profile", "run_sweep",
    "write_result", "write_run_directory",
}  # fmt: skip


def test_the_public_names_are_the_documented_set() -> None:
    assert set(loadgate.__all__) == PUBLIC
    assert sorted(dir(loadgate)) == sorted(PUBLIC)


def test_every_public_name_resolves() -> None:
    for name in loadgate.__all__:
        assert getattr(loadgate, name) is not None, name


def test_importing_loadgate_does_not_import_the_load_pipeline() -> None:
    heavy = "('aiohttp', 'uvloop', 'hdrh', 'rich', 'httptools')"
    code = f"import sys, loadgate; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
