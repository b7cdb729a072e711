"""The ``loadgate`` command line (DESIGN §7): parse, build a Profile, call the core.

Nothing else lives here. Each command imports its core module on use, so
``loadgate profiles`` or a usage error never pays for the load pipeline, and a
command whose module is missing cannot break the others.

Errors the user can fix (:class:`~loadgate.errors.LoadgateError`, typer usage
errors) become one line on stderr and the exit code of DESIGN §10 — never a
traceback. :func:`main` is the console-script entry point.

It is longer than
the house's 400 lines because each command's options are declared here, one
function per command with its typer annotations; the bodies stay a few lines each.
"""

from __future__ import annotations

import atexit
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from loadgate.errors import LoadgateError, UsageError
from loadgate.profile import bundled_profiles, load_profile

if TYPE_CHECKING:
    from loadgate.analysis.compare import Comparison

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
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="I/N",
            help="Run shard I of N (default: $JOB_COMPLETION_INDEX of $LOADGATE_SHARDS).",
        ),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option(
            help="Shards: the common measured start, UNIX seconds or ISO 8601 "
            "(default $LOADGATE_START_AT, else the next half minute 15 s ahead)."
        ),
    ] = None,
    stub_ledger: Annotated[
        list[str] | None,
        typer.Option(
            metavar="URL",
            help="Shards: also join this stub's ledger; {i} stands for every other shard. "
            "Repeatable.",
        ),
    ] = None,
) -> None:
    """Run a profile against a gateway.

    Exit 0 pass, 1 fail, 2 bad input, 3 invalid (harness-bound or interrupted), 70 target down.
    """
    from loadgate.interrupts import Interrupts

    # From here on, Ctrl-C stops the run and its result is still written.
    with Interrupts(restore=not _OWN_PROCESS[0]) as interrupts:
        if history_dir is not None and git_dir is None:
            # Checked before the run: a history entry without a commit cannot be placed.
            raise UsageError("--history needs --git-dir (the gateway's commit names the entry)")
        prof = load_profile(profile, sets or ())
        from loadgate.pipeline.shard import shard_plan
        from loadgate.result import check_writable

        sharding = shard_plan(shard, start_at, tuple(stub_ledger or ()))

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
            RunOptions(
                target=target,
                git_dir=git_dir,
                run_dir=run_dir,
                observers=tuple(observers),
                stop=interrupts.stop,
                shard=sharding,
            ),
        )
        for warning in write_run_directory(result, run_dir):
            sys.stderr.write(f"loadgate: warning: {warning}\n")
        interrupts.written = run_dir / "result.json"
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


@app.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
def stub(ctx: typer.Context) -> None:
    """Run the stub upstream alone, until Ctrl-C (``loadgate stub --help`` for its flags).

    The flags are the stub's own (``python -m stub_upstream``), generated from its
    settings: one definition for the profile's ``[stub]`` table and both commands.
    """
    from stub_upstream.cli import main as stub_main

    try:
        code = stub_main(list(ctx.args), prog="loadgate stub")
    except KeyboardInterrupt:
        code = 0
    _exit(code)


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


FormatOpt = Annotated[
    str, typer.Option("--format", help="Comparison output: table, markdown or json.")
]
ThresholdOpt = Annotated[
    float, typer.Option(help="Regression threshold, percent of the base.", min=0)
]


def _check_format(fmt: str) -> None:
    from loadgate.analysis.compare_render import FORMATS

    if fmt not in FORMATS:
        allowed = f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}"
        raise UsageError(f"--format: must be {allowed} (got {fmt!r})")


def _print_rich(renderables: Sequence[Any]) -> None:
    # colour on a terminal; plain and wide in CI logs (80 columns would elide figures)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    for item in renderables:
        console.print(item)


def _show_comparison(comparison: Comparison, fmt: str, out: Path | None) -> None:
    """Print (or write to ``out``) a comparison in the chosen format."""
    from loadgate.analysis.compare_render import render, table_view

    if fmt == "table" and out is None:
        _print_rich(table_view(comparison))
        return
    text = render(comparison, fmt)
    if out is not None:
        from loadgate.result import write_atomic

        write_atomic(out, text)
    else:
        sys.stdout.write(text)


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


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
    threshold: ThresholdOpt = 5.0,
    fmt: FormatOpt = "table",
    out: Annotated[Path | None, typer.Option(help="Write the comparison here.")] = None,
) -> None:
    """Statistical comparison of results; exit 1 on a regression, 3 if a run was invalid."""
    _check_format(fmt)
    b, c = split_compare_files(files or (), base or (), cand or ())
    from loadgate.analysis.compare import compare_results
    from loadgate.result import load_run_result

    comparison = compare_results(
        [load_run_result(p) for p in b],
        [load_run_result(p) for p in c],
        threshold,
        labels=([str(p) for p in b], [str(p) for p in c]),
    )
    _show_comparison(comparison, fmt, out)
    _exit(comparison.exit_code)


@app.command()
def ab(
    profile: Annotated[str, typer.Argument(help="Profile file, or a bundled profile name.")],
    a: Annotated[str, typer.Option("--a", help="Gateway A (URL or command).")],
    b: Annotated[str, typer.Option("--b", help="Gateway B (URL or command).")],
    rounds: Annotated[
        int | None,
        typer.Option(
            help="Interleaved A/B rounds (default: as many as the power plan says).", min=1
        ),
    ] = None,
    detect: Annotated[
        str, typer.Option(help="Change the rounds are planned to detect (e.g. 1ms, 500us).")
    ] = "1ms",
    detect_metric: Annotated[
        str, typer.Option(help="Row it is planned on: [stream.|non_stream.]<metric>.<pNN>.")
    ] = "overhead_ms.p99",
    power: Annotated[
        float, typer.Option(help="Probability of detecting that change.", min=0.5, max=0.99)
    ] = 0.9,
    pilot_rounds: Annotated[
        int, typer.Option(help="Rounds run before the plan is made.", min=2)
    ] = 3,
    max_rounds: Annotated[int, typer.Option(help="Most rounds the plan may ask for.", min=2)] = 20,
    sets: SetOpt = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directory for the rounds' results (default: a new one under "
            "$LOADGATE_RUNS_DIR, or runs/)."
        ),
    ] = None,
    threshold: ThresholdOpt = 5.0,
    fmt: FormatOpt = "table",
) -> None:
    """Interleaved A/B runs of one profile against two gateways; B is the candidate.

    Without --rounds, a pilot measures how much the paired difference varies and
    the session runs as many rounds as detect --detect on --detect-metric at --power.

    Exit 0 no regression, 1 B significantly worse, 2 bad input, 3 a run was invalid.
    """
    _check_format(fmt)
    prof = load_profile(profile, sets or ())  # a bad profile fails before any round runs
    from loadgate.analysis.power import Plan, parse_target
    from loadgate.interrupts import Interrupts
    from loadgate.pipeline.ab import PowerSpec, parse_side, run_ab

    side_a, side_b = parse_side(a, "--a"), parse_side(b, "--b")
    spec = PowerSpec(parse_target(detect_metric, detect), power, pilot_rounds, max_rounds)
    if rounds is None and pilot_rounds > max_rounds:
        raise UsageError(f"--pilot-rounds {pilot_rounds} is more than --max-rounds {max_rounds}")

    def on_plan(plan: Plan, first: bool) -> None:
        if first:
            _stderr_line(f"ab: {plan.headline()}; running {plan.rounds}")
        else:
            _stderr_line(f"ab: re-planned after {plan.spread.rounds} rounds: {plan.headline()}; "
                         f"running {plan.rounds}")  # fmt: skip
        for note in plan.notes():
            _stderr_line(f"ab:   {note}")

    with Interrupts(restore=not _OWN_PROCESS[0]) as interrupts:
        outcome = run_ab(
            prof,
            side_a,
            side_b,
            rounds,
            power=spec,
            threshold_pct=threshold,
            out_dir=out_dir,
            on_progress=_stderr_line,
            on_plan=on_plan,
            stop=interrupts.stop,
        )
    if outcome.comparison is not None:
        _show_comparison(outcome.comparison, fmt, None)
    if outcome.stopped:
        _stderr_line(
            f"ab: stopped after {outcome.rounds_done} of {outcome.rounds_planned} round(s): "
            f"{outcome.stopped}"
        )
    reached = outcome.reached
    if reached is not None and reached.mde_ms is not None:
        _stderr_line(
            f"ab: {outcome.rounds_done} rounds detect +{reached.mde_ms:.3g} ms on "
            f"{reached.target.name} at {reached.power * 100:g} % power "
            f"(asked: +{reached.target.change_ms:g} ms)"
        )
    if outcome.set_aside:
        _stderr_line(
            f"ab: {outcome.set_aside} run(s) of rounds the harness spoilt set aside and their "
            f"rounds run again (in {outcome.out_dir / 'set-aside'}; not compared)"
        )
    if outcome.invalid:
        _stderr_line(f"ab: {outcome.invalid} run(s) invalid: the verdict above is not trustworthy")
    _stderr_line(f"ab: results in {outcome.out_dir}")
    _exit(outcome.exit_code)


@app.command()
def history(
    results_dir: Annotated[
        Path, typer.Argument(help="Results tree: <machine>/<commit>.json.")
    ] = Path("results"),
    machine: Annotated[str | None, typer.Option(help="Only this machine id.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write an SVG plot here.")] = None,
) -> None:
    """Figures across commits, per machine."""
    from loadgate.analysis.history import history_table, load_history, machine_dir, render_svg

    d = machine_dir(results_dir, machine)
    entries = load_history(d)
    if not entries:
        raise UsageError(f"{d}: no result files")
    _print_rich([history_table(entries, d.name)])
    if plot is not None:
        from loadgate.result import write_atomic

        write_atomic(plot, render_svg(entries, f"overhead (ms) — machine {d.name}"))
        _stderr_line(f"plot written to {plot}")
    _exit(0)


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
    frontier: Annotated[
        str | None,
        typer.Option(
            metavar="MS,MS,...",
            help="Throughput frontier: the highest open-loop rate keeping overhead p99 "
            "under each bound (ms), e.g. 1,5,10,50,100.",
        ),
    ] = None,
    sets: SetOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write the sweep result here.")] = None,
) -> None:
    """Capacity sweep: one run per step, and the knee (largest step passing all gates).

    Exit 0 the smallest step passed, 1 no step passed, 2 bad input, 3 harness-bound.
    With --frontier: 0 the lowest rate was harness-valid, 3 it was not.
    """
    steps_c = _number_list("--concurrency", concurrency, int)
    steps_r = _number_list("--rates", rates, float)
    bounds = _number_list("--frontier", frontier, float)
    if bounds and (steps_c or steps_r or auto):
        raise UsageError(
            "sweep: --frontier searches the rate itself: no --concurrency/--rates/--auto"
        )
    if steps_c and steps_r:
        raise UsageError("sweep: give --concurrency or --rates, not both")
    if not (steps_c or steps_r or auto or bounds):
        raise UsageError(
            "sweep: give --concurrency N,N,..., --rates R,R,..., --auto or --frontier MS,MS,..."
        )
    from loadgate.analysis.knee import fmt_value, policy_from_sets
    from loadgate.result import check_writable

    policy, profile_sets = policy_from_sets(sets or ())
    prof = load_profile(profile, profile_sets)
    if out is not None:
        check_writable(out, "--out")  # found now, not after the last step
    from loadgate.pipeline.run import raise_open_file_limit
    from loadgate.pipeline.stopping import run_on_uvloop
    from loadgate.pipeline.sweep import plan_mode, run_sweep, step_line
    from loadgate.result import write_result
    from loadgate.rundir import new_run_dir

    mode, values = ("rate", None) if bounds else plan_mode(prof, steps_c, steps_r)
    sweep_dir = new_run_dir(prof.name, kind="sweep", out=out)
    raise_open_file_limit()
    from loadgate.interrupts import Interrupts

    with Interrupts(restore=not _OWN_PROCESS[0]) as interrupts:
        result = run_on_uvloop(
            run_sweep(
                prof,
                mode,
                values,
                policy,
                target=target,
                sweep_dir=sweep_dir,
                on_step=lambda step: _stderr_line(step_line(step)),
                stop=interrupts.stop,
                frontier=sorted(set(bounds)) if bounds else None,
            )
        )
        if out is not None:
            write_result(result, out)
    if result.stopped:
        _stderr_line(f"sweep: stopped early: {result.stopped}")
    if result.skipped:
        _stderr_line(f"sweep: skipped {', '.join(fmt_value(v) for v in result.skipped)}")
    if result.frontier is not None:
        from loadgate.analysis.frontier import frontier_lines

        for line in frontier_lines(result.frontier):
            typer.echo(line)
    else:
        typer.echo(f"knee: {result.knee.reason}")
    typer.echo(result.recommendation)
    typer.echo(f"sweep: {result.verdict} — results, plot and CSV in {sweep_dir}")
    _exit(result.exit_code)


@app.command()
def merge(
    files: Annotated[list[Path], typer.Argument(help="The shards' result files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the merged result here.")],
    min_overlap: Annotated[
        float,
        typer.Option(help="Least share of the windows' union every shard measured.", min=0, max=1),
    ] = 0.9,
    html: HtmlOpt = None,
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
) -> None:
    """Merge the results of a sharded run into one result and judge it.

    Exit 0 pass, 1 fail, 2 not one run's shards, 3 invalid (a shard or the merge).
    """
    from loadgate.result import check_writable, load_run_result, write_result
    from loadgate.result.merge import ShardResult, merge_results

    check_writable(out, "--out")
    merged = merge_results(
        [ShardResult(str(f), load_run_result(f)) for f in files], min_overlap=min_overlap
    )
    write_result(merged, out)
    from loadgate.report.summary import print_summary

    print_summary(merged, Console() if sys.stdout.isatty() else Console(width=140))
    if html or junit or markdown:
        from loadgate.report import write_reports

        write_reports(merged, html=html, junit=junit, markdown=markdown)
    _exit(merged.exit_code)


@app.command()
def k8s(
    profile: Annotated[str, typer.Argument(help="Profile file, or a bundled profile name.")],
    shards: Annotated[int, typer.Option(help="Shards (pods of the Indexed Job).", min=1)],
    image: Annotated[str, typer.Option(help="Container image with loadgate (see Dockerfile).")],
    target: Annotated[
        str | None, typer.Option(help="The gateway's base URL inside the cluster.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the manifests.")] = Path(
        "loadgate-k8s"
    ),
    name: Annotated[str, typer.Option(help="Prefix of every object's name.")] = "loadgate",
    start_at: Annotated[
        str | None,
        typer.Option(help="Common start (UNIX s / ISO 8601); default: derived by each shard."),
    ] = None,
    sets: SetOpt = None,
) -> None:
    """Write Kubernetes manifests that run a profile as N shards and merge them."""
    from loadgate.deploy.k8s import K8sOptions, write_manifests

    prof = load_profile(profile, sets or ())
    for path in write_manifests(
        prof,
        K8sOptions(
            shards=shards,
            image=image,
            target=target,
            name=name,
            start_at=start_at,
            sets=tuple(sets or ()),
        ),
        out,
    ):
        typer.echo(str(path))


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


#: True when :func:`main` runs as the process's entry point (not called by a test):
#: then signal handlers may stay installed until the process exits.
_OWN_PROCESS = [False]


def _ignore_stop_signals() -> None:
    # Ignored, not blocked: blocking is per thread, and a helper thread still
    # alive during shutdown would take the signal with the default action.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point: run the CLI, turn user errors into one line + exit code.

    As a process of its own (``argv`` None), the exit code is final once decided:
    SIGINT/SIGTERM are ignored for the last moments, because the interpreter resets
    signal handlers while it shuts down and a late Ctrl-C would turn a written
    result's exit 3 into death by signal.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if argv is None:
        _OWN_PROCESS[0] = True
        atexit.register(_ignore_stop_signals)
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
