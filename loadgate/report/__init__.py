"""Reports of a result for people (HTML) and for CI (JUnit XML, Markdown).

``loadgate report RESULT.json [--html F] [--junit F] [--markdown F]`` calls
:func:`main`; the runner calls :func:`write_reports` to drop an HTML report into
each run directory; ``sweep`` and ``compare`` reuse :func:`render_sweep_html`,
:func:`sweep_svg` and :func:`render_compare_html`. All renderers take the
result's plain dict (ARCHITECTURE "Result") and return text; only the two
entry points here touch files.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadgate.errors import UsageError
from loadgate.report.html import (
    render_compare_html,
    render_html,
    render_sweep_html,
    sweep_points,
    sweep_svg,
)
from loadgate.report.junit import render_junit
from loadgate.report.markdown import render_markdown

__all__ = [
    "main",
    "render_compare_html",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_sweep_html",
    "sweep_points",
    "sweep_svg",
    "write_reports",
]


def _data(result: Any) -> Mapping[str, Any]:
    from loadgate.result.legacy import as_dict

    return as_dict(result)


def _write(path: Path, text: str) -> Path:
    """Whole-file write (temp + rename) so a CI step never uploads half a report."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the report from a CI uploader
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_reports(
    result: Any,
    html: Path | None = None,
    junit: Path | None = None,
    markdown: Path | None = None,
) -> list[Path]:
    """Write the requested reports of ``result`` (a Result or its dict); return their paths.

    A sweep result (one with ``steps``) gets the sweep page as its HTML.
    """
    data = _data(result)
    written: list[Path] = []
    if html is not None:
        page = render_sweep_html(data) if data.get("steps") else render_html(data)
        written.append(_write(html, page))
    if junit is not None:
        written.append(_write(junit, render_junit(data)))
    if markdown is not None:
        written.append(_write(markdown, render_markdown(data)))
    return written


def main(
    result: Path,
    html: Path | None = None,
    junit: Path | None = None,
    markdown: Path | None = None,
) -> int:
    """``loadgate report``: with no output named, writes ``RESULT.html`` beside the result.

    Returns 0: a report is written whatever the verdict (the run's own exit code
    already carried it). Bad input raises UsageError naming the file.
    """
    from loadgate.result import load_result

    loaded = load_result(Path(result))
    if html is None and junit is None and markdown is None:
        html = Path(result).with_suffix(".html")
    for path in write_reports(loaded, html=html, junit=junit, markdown=markdown):
        print(f"wrote {path}", file=sys.stderr)
    return 0
