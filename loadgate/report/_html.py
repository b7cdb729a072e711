"""The pieces every HTML page shares: the page shell and its CSS, tables, banners,
the header line, the gates table and the machine/profile section.

Pages are single files with inline CSS and inline SVG: no script, font or image
is fetched when one is opened, so it can be attached to a CI job, mailed, or
opened years later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape

from loadgate.report._fmt import (
    fmt_num,
    gate_outcome,
    gate_rule,
    gate_status,
    gate_value,
    undecided_groups,
)
from loadgate.result.model import Gate, Result, SweepResult

__all__ = ["banner", "gates_table", "header", "kv", "machine", "page", "table", "verdict_block"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;
 color:#1d1d1f;margin:0;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
 border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:14px;margin:14px 0 6px}
.sub{color:#555;margin:0 0 14px}
.verdict{border-radius:6px;padding:12px 16px;color:#fff;font-size:18px;font-weight:600}
.verdict.pass{background:#1e7e34}.verdict.fail{background:#b02a37}
.verdict.invalid{background:#8a6d00}.verdict.unknown{background:#555}
.verdict ul{font-size:14px;font-weight:400;margin:6px 0 0;padding-left:20px}
table{border-collapse:collapse;background:#fff;margin:6px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}td.num{text-align:right}
.ok{color:#1e7e34;font-weight:600}.bad{color:#b02a37;font-weight:600}
.undecided{color:#8a6d00;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
.warn{background:#fff4d6;border:1px solid #e0c060;border-radius:4px;padding:6px 10px;
 margin:4px 0}
pre{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;font-size:12px}
.note{color:#555;font-size:13px}
.floor{color:#555;font-style:italic}
"""

_VERDICT_LABEL = {
    "pass": "PASS: every gate passed",
    "fail": "FAIL: a gate failed",
    "invalid": "INVALID: the measurement cannot be trusted; the gates prove nothing",
}
#: gate status → CSS class of its result cell
_GATE_CLASS = {"pass": "ok", "fail": "bad", "undecided": "undecided"}


def page(title: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """Rows are already-escaped HTML cells (callers escape their text)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv(rows: Iterable[tuple[str, str]], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table{attr}><tbody>{body}</tbody></table>"


def banner(cls: str, label: str, reasons: Sequence[str], verdict: str, ident: str) -> str:
    """A coloured block: ``cls`` pass/fail/invalid/unknown, the label, reasons as a list."""
    items = "".join(f"<li>{escape(r)}</li>" for r in reasons)
    return (
        f'<div class="verdict {cls}" id="{ident}" data-verdict="{escape(verdict)}">'
        f"{escape(label)}{f'<ul>{items}</ul>' if items else ''}</div>"
    )


def verdict_block(result: Result) -> str:
    return banner(
        result.verdict, _VERDICT_LABEL[result.verdict], result.reasons, result.verdict, "verdict"
    )


def _gate_cell(g: Gate) -> str:
    why = f' title="{escape(g.undecided_reason)}"' if g.undecided_reason else ""
    return f'<span class="{_GATE_CLASS[gate_status(g)]}"{why}>{escape(gate_outcome(g))}</span>'


def gates_table(gates: Sequence[Gate]) -> str:
    """Gate, measured, budget, result; why any gate is undecided, once per reason, below."""
    if not gates:
        return '<p class="note">No gates in this result.</p>'
    rows = [
        [
            f"<code>{escape(g.name)}</code>",
            escape(gate_value(g)),
            escape(gate_rule(g)),
            _gate_cell(g),
        ]
        for g in gates
    ]
    notes = "".join(
        '<p class="note undecided-why">Undecided: '
        + ", ".join(f"<code>{escape(n)}</code>" for n in names)
        + f": {escape(why)}</p>"
        for names, why in undecided_groups(gates)
    )
    return table(["gate", "measured", "budget", "result"], rows, "gates") + notes


def header(result: Result | SweepResult, title: str) -> str:
    bits = [f"profile <b>{escape(result.profile_name)}</b>"]
    if isinstance(result, Result):
        gw = result.gateway
        bits.append(f"gateway {escape(gw.kind)}" + (f" at {escape(gw.url)}" if gw.url else ""))
    bits += [
        f"started {escape(result.started_at or '?')}",
        f"duration {fmt_num(result.duration_s, 's')}",
    ]
    if result.git is not None and result.git.commit:
        dirty = " (dirty)" if result.git.dirty else ""
        bits.append(f"commit <code>{escape(result.git.commit[:12])}</code>{dirty}")
    return f'<h1>{escape(title)}</h1><p class="sub">{" · ".join(bits)}</p>'


def _plain(v: object) -> str:
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v)
    return "–" if v is None else str(v)


def machine(result: Result | SweepResult) -> str:
    """Who measured (environment, git) and the resolved profile (secrets redacted)."""
    env = result.environment
    rows = [(k, _plain(v)) for k, v in env if k != "packages" and v is not None]
    rows += [(f"package {k}", _plain(v)) for k, v in env.packages.items()]
    if result.git is not None:
        rows += [(f"git {k}", _plain(v)) for k, v in result.git if v is not None]
    profile = json.dumps(result.profile, indent=2, sort_keys=False)
    return (
        f"<h2>Machine</h2>{kv(rows, 'environment')}"
        f"<h2>Profile</h2><details><summary>resolved profile (secrets redacted)</summary>"
        f"<pre>{escape(profile)}</pre></details>"
    )
