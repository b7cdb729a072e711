"""The ``loadgate`` command line (DESIGN §7): parse, build a Profile, call the core.

Nothing else lives here. Each command imports its core module on use, so
``loadgate profiles`` or a usage error never pays for the load pipeline, and a
command whose module is missing cannot break the others.

Errors the user can fix (:class:`~loadgate.errors.LoadgateError`, typer usage
errors) become one line on stderr and the exit code of DESIGN §10 — never a
traceback. :func:`main` is the console-script entry point.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from loadgate.errors import LoadgateError, UsageError
from loadgate.profile import bundled_profiles, load_profile, parse_profile

__all__ = ["app", "main", "split_compare_files"]

app = typer.Typer(
    name="loadgate",
    help="Load and proxy-overhead benchmark harness for LLM API gateways.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a profile key by dotted path; the value is TOML, else a string. Repeatable.",
    ),
]
HtmlOpt = Annotated[Path | None, typer.Option("--html", help="Write an HTML report here.")]
JunitOpt = Annotated[Path | None, typer.Option("--junit", help="Write a JUnit XML report here.")]
MarkdownOpt = Annotated[
    Path | None, typer.Option("--markdown", help="Write a Markdown summary here.")
]


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        from loadgate import __version__

        typer.echo(f"loadgate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Load and proxy-overhead benchmark harness for LLM API gateways."""


@app.command()
def run(
    profile: Annotated[str, typer.Argument(help="Profile file, or a bundled profile name.")],
    target: Annotated[
        str | None,
        typer.Option(help="Base URL of an already-running gateway (loadgate starts the stub)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the result JSON here.")] = None,
    sets: SetOpt = None,
    git_dir: Annotated[
        Path | None, typer.Option(help="The gateway's git repo: its commit goes in the result.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve the harness's own Prometheus metrics on this port.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
    html: HtmlOpt = None,
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
    history_dir: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="Also file the result as DIR/<machine>/<commit>.json for `loadgate history` "
            "(needs --git-dir).",
        ),
    ] = None,
) -> None:
    """Run a profile against a gateway.

    Exit 0 pass, 1 fail, 2 bad input, 3 invalid (harness-bound or interrupted), 70 target down.
    """
    if history_dir is not None and git_dir is None:
        # Checked before the run: a history entry without a commit cannot be placed.
        raise UsageError("--history needs --git-dir (the gateway's commit names the entry)")
    prof = load_profile(profile, sets or ())
    from loadgate.result import check_writable

    for option, path in (
        ("--out", out),
        ("--html", html),
        ("--junit", junit),
        ("--markdown", markdown),
    ):
        if path is not None:
            check_writable(path, option)  # found now, not after a 70 s run
    from loadgate.observe.observer import RunObserver
    from loadgate.observe.progress import Progress
    from loadgate.pipeline.run import RunOptions
    from loadgate.pipeline.run import run as run_profile
    from loadgate.report.summary import print_summary
    from loadgate.result import write_result
    from loadgate.rundir import new_run_dir, write_run_directory

    observers: list[RunObserver] = [Progress(enabled=not quiet)]
    if metrics_port is not None:
        from loadgate.observe.live_metrics import LiveMetrics

        observers.append(LiveMetrics(metrics_port))
    run_dir = new_run_dir(prof.name, out=out)
    result = run_profile(
        prof,
        RunOptions(target=target, git_dir=git_dir, run_dir=run_dir, observers=tuple(observers)),
    )
    for warning in write_run_directory(result, run_dir):
        sys.stderr.write(f"loadgate: warning: {warning}\n")
    if out is not None:
        write_result(result, out)
    # CI logs are not 80 columns wide: don't fold the tables there.
    print_summary(result, Console() if sys.stdout.isatty() else Console(width=140))
    if html or junit or markdown:
        from loadgate.report import write_reports

        write_reports(result, html=html, junit=junit, markdown=markdown)
    if history_dir is not None:
        from loadgate.analysis.history import store_result

        typer.echo(f"filed for history: {store_result(result, history_dir)}")
    _exit(result.exit_code)


@app.command()
def stub(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0 = any free port).")] = 18000,
    ttft_ms: Annotated[float, typer.Option(help="Time to first token, ms.")] = 50.0,
    itl_ms: Annotated[float, typer.Option(help="Inter-token latency, ms.")] = 10.0,
    tokens: Annotated[int, typer.Option(help="Output tokens per response.")] = 16,
    workers: Annotated[int, typer.Option(help="Worker processes (SO_REUSEPORT).")] = 1,
    jitter_ms: Annotated[float, typer.Option(help="Uniform latency jitter, ms.")] = 0.0,
    seed: Annotated[int, typer.Option(help="RNG seed for jitter and faults.")] = 1,
    faults: Annotated[
        list[str] | None,
        typer.Option("--fault", metavar="NAME=RATE", help="Inject a fault at a rate. Repeatable."),
    ] = None,
) -> None:
    """Run the stub upstream alone (until Ctrl-C)."""
    fault_rates: dict[str, object] = {}
    for item in faults or ():
        name, sep, rate = item.partition("=")
        try:
            if not sep:
                raise ValueError(item)
            fault_rates[name.strip()] = float(rate)
        except ValueError:
            raise UsageError(f"--fault {item!r}: expected NAME=RATE, RATE a number") from None
    spec = parse_profile(
        {
            "stub": {
                "host": host,
                "port": port,
                "ttft_ms": ttft_ms,
                "itl_ms": itl_ms,
                "output_tokens": tokens,
                "workers": workers,
                "jitter_ms": jitter_ms,
                "seed": seed,
                "faults": fault_rates,
            }
        },
        source="loadgate stub",
    )
    from loadgate.pipeline.run import stub_config
    from stub_upstream.server import run_stub

    try:
        run_stub(stub_config(spec))
    except (ValueError, OSError) as exc:  # bad config, port in use
        raise UsageError(f"loadgate stub: {exc}") from None
    except KeyboardInterrupt:
        pass


def split_compare_files(
    files: Sequence[str], base: Sequence[Path], cand: Sequence[Path]
) -> tuple[list[Path], list[Path]]:
    """Sort ``loadgate compare`` arguments into (base, candidate) result files.

    Accepted spellings, which may not be mixed ambiguously:
    ``A.json B.json``; ``A1 A2 … --vs B1 B2 …``; ``--base A1 --base A2 --cand B1 …``;
    positionals plus ``--cand`` (positionals are the base) or plus ``--base``
    (positionals are the candidates).
    """
    left: list[str] = []
    right: list[str] = []
    seen_vs = False
    for token in files:
        if token == "--vs" or token.startswith("--vs="):
            if seen_vs:
                raise UsageError("compare: --vs given twice")
            seen_vs = True
            value = token.partition("=")[2]
            if value:
                right.append(value)
        elif token.startswith("-") and token != "-":
            raise UsageError(f"compare: no such option {token}")
        else:
            (right if seen_vs else left).append(token)
    b, c = list(base), list(cand)
    if seen_vs:
        b += [Path(x) for x in left]
        c += [Path(x) for x in right]
    elif left and not b and not c:
        if len(left) != 2:
            raise UsageError(
                "compare: give BASE.json CAND.json, or BASE... --vs CAND..., or --base/--cand"
            )
        b, c = [Path(left[0])], [Path(left[1])]
    elif left and c and not b:
        b = [Path(x) for x in left]
    elif left and b and not c:
        c = [Path(x) for x in left]
    elif left:
        raise UsageError("compare: positional files given with both --base and --cand")
    if not b or not c:
        raise UsageError("compare: needs at least one base and one candidate result")
    return b, c


@app.command(context_settings={"ignore_unknown_options": True})
def compare(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="BASE.json CAND.json | BASE... --vs CAND...",
            help="Result files: two (base, candidate), or several per side split by --vs.",
            show_default=False,
        ),
    ] = None,
    base: Annotated[
        list[Path] | None, typer.Option("--base", help="A base result. Repeatable.")
    ] = None,
    cand: Annotated[
        list[Path] | None, typer.Option("--cand", help="A candidate result. Repeatable.")
    ] = None,
    threshold: Annotated[float, typer.Option(help="Regression threshold, percent.", min=0)] = 5.0,
    fmt: Annotated[str, typer.Option("--format", help="table, markdown or json.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write the comparison here.")] = None,
) -> None:
    """Statistical comparison of results; exit 1 on a significant regression."""
    if fmt not in ("table", "markdown", "json"):
        raise UsageError(f"--format: must be table, markdown or json (got {fmt!r})")
    b, c = split_compare_files(files or (), base or (), cand or ())
    from loadgate.analysis.compare import main as compare_main

    _exit(compare_main(b, c, threshold, fmt, out))


@app.command()
def ab(
    profile: Annotated[str, typer.Argument(help="Profile file, or a bundled profile name.")],
    a: Annotated[str, typer.Option("--a", help="Gateway A (URL or command).")],
    b: Annotated[str, typer.Option("--b", help="Gateway B (URL or command).")],
    # 5: with fewer, paired t intervals have so few degrees of freedom that only large
    # steps show (benchmarks/README.md, "Regression detection").
    rounds: Annotated[int, typer.Option(help="Interleaved A/B rounds.", min=1)] = 5,
    sets: SetOpt = None,
    out_dir: Annotated[Path | None, typer.Option(help="Directory for per-round results.")] = None,
) -> None:
    """Interleaved A/B runs of one profile against two gateways."""
    load_profile(profile, sets or ())  # fail fast on a bad profile, before any round runs
    from loadgate.pipeline.ab import main as ab_main

    _exit(ab_main(profile, a, b, rounds, list(sets or ()), out_dir))


@app.command()
def history(
    results_dir: Annotated[
        Path, typer.Argument(help="Results tree: <machine>/<commit>.json.")
    ] = Path("results"),
    machine: Annotated[str | None, typer.Option(help="Only this machine id.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write an SVG plot here.")] = None,
) -> None:
    """Figures across commits, per machine."""
    from loadgate.analysis.history import main as history_main

    _exit(history_main(results_dir, machine, plot))


def _number_list(option: str, text: str | None, kind: type[int] | type[float]) -> list[Any] | None:
    if text is None:
        return None
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        noun = "integers" if kind is int else "numbers"
        raise UsageError(f"{option}: expected comma-separated {noun} (got {text!r})") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"{option}: expected positive values (got {text!r})")
    return values


@app.command()
def sweep(
    profile: Annotated[str, typer.Argument(help="Profile file, or a bundled profile name.")],
    target: Annotated[str | None, typer.Option(help="Base URL of a running gateway.")] = None,
    concurrency: Annotated[
        str | None, typer.Option(metavar="N,N,...", help="Closed-loop steps, e.g. 8,16,32.")
    ] = None,
    rates: Annotated[
        str | None, typer.Option(metavar="R,R,...", help="Open-loop steps (req/s).")
    ] = None,
    auto: Annotated[bool, typer.Option("--auto", help="Find the knee automatically.")] = False,
    sets: SetOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write the sweep result here.")] = None,
) -> None:
    """Capacity sweep: one run per step, and the knee (largest step passing all gates)."""
    steps_c = _number_list("--concurrency", concurrency, int)
    steps_r = _number_list("--rates", rates, float)
    if steps_c and steps_r:
        raise UsageError("sweep: give --concurrency or --rates, not both")
    if not (steps_c or steps_r or auto):
        raise UsageError("sweep: give --concurrency N,N,..., --rates R,R,... or --auto")
    from loadgate.pipeline.sweep import main as sweep_main

    _exit(sweep_main(profile, target, steps_c, steps_r, auto, list(sets or ()), out))


@app.command()
def report(
    result: Annotated[Path, typer.Argument(metavar="RESULT.json", help="A result file.")],
    html: HtmlOpt = None,
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
) -> None:
    """Reports (HTML, JUnit, Markdown) from a result file; with none named, RESULT.html.

    Exit 0 whatever the verdict (the run's own exit code carried it); 2 on bad input.
    """
    from loadgate.report import write_reports
    from loadgate.result import load_result

    loaded = load_result(result)
    if html is None and junit is None and markdown is None:
        html = result.with_suffix(".html")
    for path in write_reports(loaded, html=html, junit=junit, markdown=markdown):
        typer.echo(f"wrote {path}", err=True)


@app.command()
def profiles() -> None:
    """List the bundled profiles and what each answers."""
    for name, line in bundled_profiles().items():
        typer.echo(f"{name:<12} {line}")


def _error(message: str, code: int) -> NoReturn:
    first = message.strip().splitlines()[0] if message.strip() else "error"
    sys.stderr.write(f"loadgate: error: {first}\n")
    sys.stderr.flush()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point: run the CLI, turn user errors into one line + exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = app(args=args, prog_name="loadgate", standalone_mode=False)
    except LoadgateError as exc:
        _error(str(exc), exc.exit_code)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stdout.write(exc.format_message() + "\n")
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        _error(f"{exc.format_message()}{where}", exc.exit_code)
    except typer.Abort:
        _error("aborted", 130)
    except KeyboardInterrupt:
        _error("interrupted", 130)
    sys.exit(rv if isinstance(rv, int) else 0)
