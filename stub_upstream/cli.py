"""``python -m stub_upstream`` and ``loadgate stub``: flags into a :class:`StubConfig`, serve.

The flags are generated from the model's fields (name, type, description), so
the stub's settings have one definition. ``--config FILE`` reads a JSON config
first (how :class:`~stub_upstream.process.StubProcess` passes one: nothing secret
on a command line); flags given override it. A bad value is one line naming the
flag, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, get_args, get_origin

from pydantic import ValidationError

from stub_upstream.config import StubConfig, flag_of
from stub_upstream.server import run_stub

__all__ = ["build_parser", "config_from_args", "main"]


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _fault(text: str) -> tuple[str, float]:
    name, sep, rate = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=RATE")
    try:
        return name.strip(), float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: RATE is not a number") from None


def build_parser(prog: str = "python -m stub_upstream") -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog=prog,
        description="Deterministic upstream LLM API stub (OpenAI + Anthropic wire formats).",
    )
    p.add_argument("--config", type=Path, default=None, help="read settings from this JSON file")
    for name, info in StubConfig.model_fields.items():
        flag = flag_of(name)
        default = info.get_default(call_default_factory=True)
        help_text = f"{info.description} (default {default!r})"
        ann = info.annotation
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("json"):
            p.add_argument(flag, dest=name, type=json.loads, default=None, metavar="JSON",
                           help=help_text)  # fmt: skip
        elif ann is bool:
            p.add_argument(flag, dest=name, action="store_true", default=None, help=help_text)
        elif get_origin(ann) is dict:
            p.add_argument(flag, dest=name, type=_fault, action="append", metavar="NAME=RATE",
                           help=help_text)  # fmt: skip
        elif get_origin(ann) is list:
            item = get_args(ann)[0]
            p.add_argument(flag, dest=name, type=item, action="append", metavar="VALUE",
                           help=help_text + "; repeatable")  # fmt: skip
        else:
            kinds: dict[Any, Callable[[str], Any]] = {int: int, float: float, str: str}
            kind = kinds.get(ann, str)
            p.add_argument(flag, dest=name, type=kind, default=None, help=help_text)
    p.add_argument("--ready-file", type=Path, default=None, help="write the bound port here")
    p.add_argument("--die-with-parent", action="store_true", help=argparse.SUPPRESS)
    return p


def config_from_args(ns: argparse.Namespace) -> StubConfig:
    """The config file (if any), then every flag given; raises ValidationError / ValueError."""
    data: dict[str, Any] = {}
    if ns.config is not None:
        data = json.loads(Path(ns.config).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"--config {ns.config}: not a JSON object")
    for name in StubConfig.model_fields:
        value = getattr(ns, name, None)
        if value is None:
            continue
        data[name] = dict(value) if isinstance(value, list) and name == "faults" else value
    return StubConfig.model_validate(data)


def _problem(exc: ValidationError) -> str:
    """One line naming the flag: ``--tokens: Input should be …``, ``--fault boom: unknown …``."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not loc:  # a rule over several values names its key first: "faults.boom: …"
        key, sep, rest = msg.partition(": ")
        field, _, entry = key.partition(".")
        if sep and field in StubConfig.model_fields:
            loc, msg = [field, *([entry] if entry else [])], rest
    if loc and loc[0] in StubConfig.model_fields:
        return " ".join([flag_of(loc[0]), *loc[1:]]) + f": {msg}"
    return ".".join(loc) + f": {msg}" if loc else msg


def main(argv: list[str] | None = None, prog: str = "python -m stub_upstream") -> int:
    """Exit 0 after a clean stop, 2 on a bad flag or value, 1 when the port cannot be bound."""
    ns = build_parser(prog).parse_args(argv)
    try:
        cfg = config_from_args(ns)
    except ValidationError as exc:
        print(f"{prog}: error: {_problem(exc)}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        run_stub(cfg, ready_file=ns.ready_file, die_with_parent=ns.die_with_parent)
    except OSError as e:
        print(f"{prog}: error: cannot listen on {cfg.host}:{cfg.port}: {e}", file=sys.stderr)
        return 1
    return 0
