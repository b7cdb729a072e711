"""The bundled reference gateway, old vs new, in one run: overhead, CPU per request, max req/s.

"old" is ``reference_gateway/`` as of ``--baseline`` (default: the last aiohttp commit),
extracted with ``git archive`` into benchmarks/out/; "new" is this checkout's. Both run
from the same .venv, each as ``python -m reference_gateway`` with its own PYTHONPATH.

Scenarios (each variant in turn, order alternating across ``--rounds``):
  gate  ``loadgate run phase2-gate`` shortened (``--duration``/``--warmup``), through a
        gateway this script starts (``--target``): overhead p50/p99 from the result's
        ``metrics.overhead_ms``, and the gateway's CPU per request (its /proc CPU time
        over the run, divided by its own ``gateway_requests_total`` delta). Unpinned, as
        ``python3 scripts/dev.py gate`` runs, unless ``--pin``: then the gateway on CPU 1,
        loadgate and its stub on CPU 0. ``--noise N`` adds N busy-looping processes for
        the gate runs, a stand-in for the other work a shared 2-core box carries.
  max   wrk (one thread, 100 connections) through the gateway to a zero-latency stub,
        non-streamed and streamed chat completions; always pinned when taskset exists:
        gateway on CPU 1, wrk and the stub on CPU 0. req/s, the gateway's CPU µs per
        request and its CPU share (under ~90 % the gateway was not the bottleneck).

    flock /work/bench.lock .venv/bin/python benchmarks/reference_gateway_bench.py --only max
    flock /work/bench.lock .venv/bin/python benchmarks/reference_gateway_bench.py --only gate
    for i in 1 2 3 4 5; do flock /work/bench.lock .venv/bin/python \
        benchmarks/reference_gateway_bench.py --only gate --duration 8 --warmup 2 \
        --rounds 2 --append; done

Each scenario's rounds are stored in benchmarks/out/reference_gateway/<scenario>.json;
``--append`` adds to them, so many short invocations (each under the lock) make one
sample: on a shared box the p99 of one 15 s run moves with whatever else runs, and the
median of paired ratios (old and new measured back to back) is what stays put.
Needs wrk (Debian) for ``max``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "gateways"))
from _common import OUT, ROOT, free_port, wait_http

__all__ = ["main"]

PY = ROOT / ".venv" / "bin" / "python"
LOADGATE = ROOT / ".venv" / "bin" / "loadgate"
HERE = OUT / "reference_gateway"
CHAT_LUA = ROOT / "benchmarks" / "peers" / "chat.lua"
DEFAULT_BASELINE = "ab2c7c9"  # last commit with the aiohttp reference gateway
GW_CPU, LOAD_CPU = 1, 0
TICK = os.sysconf("SC_CLK_TCK")
_READY = re.compile(r"reference_gateway listening on (http://\S+)")


def _pin(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []


def cpu_s(pid: int) -> tuple[float, float]:
    """(utime, stime) of ``pid`` in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def per_req(c0: tuple[float, float], c1: tuple[float, float], n: float) -> dict[str, float]:
    """CPU µs per request, and the kernel's share of it (loopback TCP is charged to the sender)."""
    user, sys_ = c1[0] - c0[0], c1[1] - c0[1]
    return {
        "gw_cpu_us_per_req": 1e6 * (user + sys_) / max(1.0, n),
        "gw_sys_share": sys_ / (user + sys_) if user + sys_ else 0.0,
    }


def extract_baseline(rev: str) -> Path:
    dest = HERE / f"baseline-{rev}"
    if not (dest / "reference_gateway" / "__main__.py").exists():
        tar = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "reference_gateway"],
            check=True,
            capture_output=True,
        ).stdout
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=BytesIO(tar)) as tf:
            tf.extractall(dest, filter="data")
    return dest


@dataclass
class Gateway:
    """One ``python -m reference_gateway`` from ``path``, stopped by its PID."""

    name: str
    path: Path
    upstream: str
    cpu: int | None

    def __enter__(self) -> Gateway:
        self.log = HERE / f"{self.name}.log"
        env = dict(os.environ, PYTHONPATH=str(self.path), PYTHONUNBUFFERED="1")
        argv = [*_pin(self.cpu), str(PY), "-m", "reference_gateway",
                "--upstream", self.upstream, "--port", "0"]  # fmt: skip
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                argv, cwd=self.path, env=env, stdout=fh, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while (m := _READY.search(self.log.read_text(errors="replace"))) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"{self.name} gateway did not start; see {self.log}")
            time.sleep(0.1)
        self.url = m.group(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def requests_total(self) -> float:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
            text = r.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("gateway_requests_total{")
        )


def check_module(name: str, path: Path) -> None:
    """The gateway a variant runs really is the one under ``path`` (not the editable install)."""
    env = dict(os.environ, PYTHONPATH=str(path))
    out = subprocess.run(
        [str(PY), "-c", "import reference_gateway; print(reference_gateway.__file__)"],
        cwd=path, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not out.startswith(str(path)):
        raise RuntimeError(f"variant {name}: imported {out}, not from {path}")


@contextlib.contextmanager
def noise(n: int, seconds: float):  # type: ignore[no-untyped-def]
    """``n`` busy loops, each ending by itself after ``seconds`` (and killed by PID)."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def run_gate(gw_path: Path, name: str, a: argparse.Namespace) -> dict[str, object]:
    stub_port = free_port()
    out = HERE / f"gate-{name}.json"
    out.unlink(missing_ok=True)
    with Gateway(name, gw_path, f"http://127.0.0.1:{stub_port}", GW_CPU if a.pin else None) as gw:
        argv = [*_pin(LOAD_CPU if a.pin else None), str(LOADGATE), "run", "phase2-gate",
                "--target", gw.url, "--set", f"stub.port={stub_port}",
                "--set", f"load.duration={a.duration}s", "--set", f"load.warmup={a.warmup}s",
                "-q", "--out", str(out)]  # fmt: skip
        n0, c0 = gw.requests_total(), cpu_s(gw.proc.pid)
        with noise(a.noise, a.duration + a.warmup + 30):
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        n1, c1 = gw.requests_total(), cpu_s(gw.proc.pid)
    if not out.exists():
        raise RuntimeError(f"loadgate wrote no result ({proc.returncode}): {proc.stderr[-2000:]}")
    d = json.loads(out.read_text())
    m = d["metrics"]["overhead_ms"]
    return {
        "verdict": d["verdict"], "exit": proc.returncode, "reasons": d["reasons"],
        "overhead_p50_ms": m["p50"], "overhead_p99_ms": m["p99"],
        "stream_p99_ms": d["by_mode"]["stream"]["metrics"]["overhead_ms"]["p99"],
        "non_stream_p99_ms": d["by_mode"]["non_stream"]["metrics"]["overhead_ms"]["p99"],
        "rps": d["requests"]["throughput_rps"],
        "loop_lag_p99_ms": d["harness"]["loop_lag_ms"]["p99"],
        **per_req(c0, c1, n1 - n0),
        "gw_requests": n1 - n0,
    }  # fmt: skip


def run_wrk(url: str, lua: Path, seconds: float) -> tuple[float, int, str]:
    argv = [*_pin(LOAD_CPU), "wrk", "-t1", "-c100", f"-d{seconds:.0f}s", "-s", str(lua),
            url + "/v1/chat/completions"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    n = int(re.search(r"(\d+) requests in", out.stdout).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)|Socket errors:.*", out.stdout)
    return rps, n, bad.group(0) if bad else ""


def run_max(gw_path: Path, name: str, stub_url: str, a: argparse.Namespace) -> dict[str, object]:
    res: dict[str, object] = {}
    stream_lua = HERE / "chat-stream.lua"
    stream_lua.write_text(CHAT_LUA.read_text().replace('"stream":false', '"stream":true'))
    with Gateway(name, gw_path, stub_url, GW_CPU) as gw:
        for mode, lua in (("non_stream", CHAT_LUA), ("stream", stream_lua)):
            run_wrk(gw.url, lua, 1)  # warm the pools and the auth cache
            c0, t0 = cpu_s(gw.proc.pid), time.monotonic()
            rps, n, bad = run_wrk(gw.url, lua, a.max_duration)
            c1, t1 = cpu_s(gw.proc.pid), time.monotonic()
            res[mode] = {
                "rps": rps,
                **per_req(c0, c1, n),
                "gw_cpu_share": (sum(c1) - sum(c0)) / (t1 - t0),
                "errors": bad,
            }
    return res


@contextlib.contextmanager
def zero_latency_stub():  # type: ignore[no-untyped-def]
    port = free_port()
    argv = [*_pin(LOAD_CPU), str(PY), "-m", "stub_upstream", "--port", str(port),
            "--ttft-ms", "0", "--itl-ms", "0", "--tokens", "16"]  # fmt: skip
    with (HERE / "stub.log").open("wb") as fh:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not wait_http(url + "/v1/models", 0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stub did not start; see {HERE / 'stub.log'}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


Round = dict[str, dict[str, object]]  # variant name -> figures, both measured back to back


def med(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def figure(r: dict[str, object], key: str) -> float:
    """``key`` may be dotted (``stream.rps``) into a nested dict."""
    v: object = r
    for part in key.split("."):
        assert isinstance(v, dict)
        v = v[part]
    assert isinstance(v, int | float)
    return float(v)


def rows_for(rounds: list[Round], rows: list[tuple[str, str, str]]) -> None:
    """Medians per variant, and the median of the per-round new/old ratios (paired)."""
    for scenario, label, key in rows:
        old = [figure(r["old"], key) for r in rounds]
        new = [figure(r["new"], key) for r in rounds]
        paired = [n / o for n, o in zip(new, old, strict=True) if o]
        pr = f"{med(paired):.2f}" if paired else "—"
        print(f"{scenario:<36}{label:<22}{med(old):>10.2f}{med(new):>10.2f}{pr:>9}")


def report(res: dict[str, list[Round]], a: argparse.Namespace) -> None:
    print(f"\nreference gateway, old = {a.baseline} (aiohttp) vs new = this checkout; medians "
          "over rounds; new/old = median of the per-round ratios")  # fmt: skip
    print(f"{'scenario':<36}{'figure':<22}{'old':>10}{'new':>10}{'new/old':>9}")
    for key, rounds in res.items():
        if key.startswith("gate"):
            title = f"{key} ({len(rounds)} rounds)"
            rows_for(rounds, [(title, "overhead p50 ms", "overhead_p50_ms"),
                              ("", "overhead p99 ms", "overhead_p99_ms"),
                              ("", "  stream p99 ms", "stream_p99_ms"),
                              ("", "  non-stream p99 ms", "non_stream_p99_ms"),
                              ("", "harness lag p99 ms", "loop_lag_p99_ms"),
                              ("", "gateway CPU µs/req", "gw_cpu_us_per_req"),
                              ("", "  of it in kernel", "gw_sys_share"),
                              ("", "req/s", "rps")])  # fmt: skip
            better = sum(figure(r["new"], "overhead_p99_ms") < figure(r["old"], "overhead_p99_ms")
                         for r in rounds)  # fmt: skip
            valid = [r for r in rounds if all(r[v]["verdict"] != "invalid" for v in ("old", "new"))]
            print(f"{'':<36}new p99 below old in {better}/{len(rounds)} rounds")
            for v in ("old", "new"):
                verdicts = [str(r[v]["verdict"]) for r in rounds]
                tally = ", ".join(f"{x} {verdicts.count(x)}" for x in sorted(set(verdicts)))
                print(f"{'':<36}verdicts {v}: {tally}")
            if valid and len(valid) < len(rounds):
                rows_for(valid, [(f"  rounds with both valid ({len(valid)})", "overhead p99 ms",
                                  "overhead_p99_ms")])  # fmt: skip
        else:
            for mode in ("non_stream", "stream"):
                title = f"{key} {mode} ({len(rounds)} rounds)"
                rows_for(rounds, [(title, "max req/s", f"{mode}.rps"),
                                  ("", "gateway CPU µs/req", f"{mode}.gw_cpu_us_per_req"),
                                  ("", "  of it in kernel", f"{mode}.gw_sys_share"),
                                  ("", "gateway CPU share", f"{mode}.gw_cpu_share")])  # fmt: skip


def scenario_key(kind: str, a: argparse.Namespace) -> str:
    if kind == "max":
        return f"max-wrk-{a.max_duration:g}s-pinned"
    pin = "pinned" if a.pin else "unpinned"
    return f"gate-{a.duration}s-{pin}" + (f"-noise{a.noise}" if a.noise else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision for 'old'")
    ap.add_argument("--only", choices=["gate", "max"], default=None)
    ap.add_argument("--duration", type=int, default=15, help="gate: measured seconds")
    ap.add_argument("--warmup", type=int, default=3, help="gate: warm-up seconds")
    ap.add_argument("--max-duration", type=float, default=5.0, help="max: wrk seconds")
    ap.add_argument("--rounds", type=int, default=1, help="old+new pairs, order alternating")
    ap.add_argument("--pin", action="store_true", help="gate: gateway CPU 1, loadgate CPU 0")
    ap.add_argument("--noise", type=int, default=0, help="gate: busy-loop processes")
    ap.add_argument(
        "--append",
        action="store_true",
        help="add these rounds to the stored ones of the same scenario (several short runs"
        " under the lock instead of one long one)",
    )
    a = ap.parse_args()
    HERE.mkdir(parents=True, exist_ok=True)
    variants = {"old": extract_baseline(a.baseline), "new": ROOT}
    for name, path in variants.items():
        check_module(name, path)
    kinds = [k for k in ("max", "gate") if a.only in (None, k)]
    res: dict[str, list[Round]] = {}
    for kind in kinds:
        key = scenario_key(kind, a)
        store = HERE / f"{key}.json"
        res[key] = json.loads(store.read_text()) if a.append and store.exists() else []
        done = len(res[key])
        for rnd in range(a.rounds):
            order = list(variants) if (done + rnd) % 2 == 0 else list(reversed(variants))
            pair: Round = {}
            for name in order:
                if kind == "max":
                    with zero_latency_stub() as stub_url:
                        pair[name] = run_max(variants[name], name, stub_url, a)
                else:
                    pair[name] = run_gate(variants[name], name, a)
                print(f"{key} {name}: {json.dumps(pair[name])}", flush=True)
            res[key].append(pair)
        store.write_text(json.dumps(res[key], indent=1))
    report(res, a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
