"""Reports of a result for people (HTML) and for CI (JUnit XML, Markdown).

Renderers take a typed :class:`~loadgate.result.model.Result` (or
:class:`~loadgate.result.model.SweepResult`) and return text; they print
nothing. :func:`write_reports` writes the requested ones through the one atomic
writer (:func:`loadgate.result.io.write_atomic`); the CLI (``loadgate report``,
``loadgate run --html …``) and the run directory call it. ``sweep`` and
``compare`` reuse :func:`render_sweep_html`, :func:`sweep_svg` and
:func:`render_compare_html`.
"""

from __future__ import annotations

from pathlib import Path

from loadgate.errors import UsageError
from loadgate.report.compare import render_compare_html
from loadgate.report.frontier import frontier_svg
from loadgate.report.html import render_html
from loadgate.report.junit import render_junit
from loadgate.report.markdown import render_markdown
from loadgate.report.sweep import render_sweep_html, sweep_points, sweep_svg
from loadgate.result.io import write_atomic
from loadgate.result.model import Result, SweepResult

__all__ = [
    "frontier_svg",
    "render_compare_html",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_sweep_html",
    "sweep_points",
    "sweep_svg",
    "write_reports",
]


def _write(path: Path, text: str) -> Path:
    try:
        return write_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None


def write_reports(
    result: Result | SweepResult,
    html: Path | None = None,
    junit: Path | None = None,
    markdown: Path | None = None,
) -> list[Path]:
    """Write the requested reports of ``result``; return their paths, in that order.

    A sweep gets the sweep page as its HTML; its gates are its steps' (each step's
    result.json has the JUnit and Markdown reports), so asking a sweep for those is
    a UsageError naming the option. An unwritable path is a UsageError naming it.
    """
    if isinstance(result, SweepResult):
        for option, path in (("--junit", junit), ("--markdown", markdown)):
            if path is not None:
                raise UsageError(
                    f"{option} {path}: a sweep result has no {option[2:]} report "
                    "(give a step's result.json)"
                )
        return [_write(html, render_sweep_html(result))] if html is not None else []
    written: list[Path] = []
    if html is not None:
        written.append(_write(html, render_html(result)))
    if junit is not None:
        written.append(_write(junit, render_junit(result)))
    if markdown is not None:
        written.append(_write(markdown, render_markdown(result)))
    return written
