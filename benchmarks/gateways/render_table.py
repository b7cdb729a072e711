"""Render benchmarks/out/results/*.json (+ meta.json from run_all.py) as the README table.

.venv/bin/python benchmarks/gateways/render_table.py [--print]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OUT, replace_section

__all__ = ["render", "write_readme"]

RESULTS = OUT / "results"
ORDER = ("reference", "nginx", "litellm", "portkey", "openai-forward")


def _get(d: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _ms(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def _row(name: str, r: dict[str, Any] | None, m: dict[str, Any]) -> str:
    if r is None:
        why = m.get("error") or "; ".join(m.get("stderr_tail", [])) or "no result file"
        return f"| {name} | did not complete: {why} |" + " |" * 8
    ov = "by_mode.{}.metrics.overhead_ms.{}"
    errors = _get(r, "requests.errors") or {}
    err = f"{_get(r, 'requests.failed')}" + (
        " (" + ", ".join(f"{k} {v}" for k, v in errors.items()) + ")" if errors else ""
    )
    hit = _get(r, "gateway.auth_cache_hit_rate")
    cpr = _get(r, "upstream.calls_per_request")
    return "| " + " | ".join([
        name,
        f"{r.get('verdict')}",
        f"{_ms(_get(r, ov.format('non_stream', 'p50')))} / "
        f"{_ms(_get(r, ov.format('non_stream', 'p99')))}",
        f"{_ms(_get(r, ov.format('stream', 'p50')))} / {_ms(_get(r, ov.format('stream', 'p99')))}",
        _ms(_get(r, "by_mode.stream.metrics.ttft_overhead_ms.p99")),
        f"{_get(r, 'requests.throughput_rps') or 0:.0f}",
        err,
        f"{_get(r, 'integrity.violations')}",
        "–" if cpr is None else f"{cpr:.3f}",
        "n/a" if hit is None else f"{hit:.3f}",
    ]) + " |"  # fmt: skip


def render() -> str:
    meta = json.loads((RESULTS / "meta.json").read_text())
    head = (
        "| gateway | verdict | overhead ms non-stream p50 / p99 | overhead ms stream p50 / p99 "
        "| TTFT overhead p99 ms | req/s @100 | errors | integrity violations "
        "| upstream calls/req | auth-cache hit rate |\n"
        "|---|---|---|---|---:|---:|---|---:|---:|---:|"
    )
    rows = []
    cal = RESULTS / "calibrate.json"
    if cal.exists():
        rows.append(_row("floor (calibrate, no gateway)", json.loads(cal.read_text()), {}))
    gws = meta.get("gateways", {})
    for name in [*ORDER, *sorted(set(gws) - set(ORDER))]:
        if name not in gws:
            continue
        f = RESULTS / f"{name}.json"
        rows.append(_row(name, json.loads(f.read_text()) if f.exists() else None, gws[name]))
    notes = []
    for name, m in gws.items():
        check = m.get("curl_check", {})
        notes.append(
            f"- **{name}** ({m.get('version', '?')}): {m.get('note', '')}. "
            f"curl check: {json.dumps(check)}. Command: `{m.get('command', '–')}` "
            f"(exit {m.get('exit_code', '–')})"
        )
    mach = meta.get("machine", {})
    return "\n".join([
        f"Machine: {mach.get('host')} · {mach.get('platform')} · {mach.get('cpus')} CPUs · "
        f"Python {mach.get('python')} · run {mach.get('started_at')}.",
        "",
        head,
        *rows,
        "",
        *notes,
    ])  # fmt: skip


def write_readme() -> None:
    """README section = INTRO.md (how to run) + the table + FINDINGS.md (what surprised us)."""
    here = Path(__file__).resolve().parent
    parts = [(here / "INTRO.md").read_text(), render(), (here / "FINDINGS.md").read_text()]
    replace_section("## Real gateways", "\n\n".join(p.strip() for p in parts))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--print", action="store_true", help="print instead of writing the README")
    a = ap.parse_args()
    if a.print:
        print(render())
    else:
        write_readme()
