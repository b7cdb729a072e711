#!/usr/bin/env python3
"""One entry point for a fresh machine that has only python3.

    python3 scripts/dev.py gate    # set up, run the Phase 2 gate on the embedded default
    python3 scripts/dev.py test    # set up (incl. system packages tests need), then the
                                   # checks (format, lint, mypy --strict on code and tests)
                                   # and the whole test suite; the first failure stops it
    python3 scripts/dev.py check   # the same without system packages (a quick local run)
    python3 scripts/dev.py setup   # only set up .venv

Set-up is idempotent: .venv is created once and re-installed only when
pyproject.toml changes (a hash stamp in .venv). Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".loadgate-installed"


def log(msg: str) -> None:
    print(f"[dev] {msg}", file=sys.stderr, flush=True)


def sh(*cmd: str | Path, check: bool = True, **kw: object) -> int:
    proc = subprocess.run([str(c) for c in cmd], check=False, **kw)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise SystemExit(f"[dev] command failed ({proc.returncode}): {' '.join(map(str, cmd))}")
    return int(proc.returncode)


def setup() -> None:
    if not (BIN / "python").exists():
        log("creating .venv")
        sh(sys.executable, "-m", "venv", VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    log("installing loadgate and its dev dependencies into .venv (once)")
    sh(BIN / "python", "-m", "pip", "install", "-q", "--upgrade", "pip")
    sh(BIN / "python", "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]")
    STAMP.write_text(want)


def apt_install(*packages: str) -> None:
    """Best effort: tests that need these skip with a clear reason when absent."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        log(f"not root or no apt-get: not installing {' '.join(packages)}")
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"check": False, "env": env, "stdout": subprocess.DEVNULL}
    install = ("apt-get", "install", "-y", "-q", *packages)
    # Debian starts a package's system service on install (postgresql's cluster,
    # redis on 6379); the tests only ever use their own throwaway instances, so a
    # policy-rc.d that refuses (101) keeps the services from starting at all.
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        if sh(*install, **quiet) != 0:
            # A fresh machine's package lists may be stale or absent: refresh once, retry.
            sh("apt-get", "update", "-q", **quiet)
            if sh(*install, **quiet) != 0:
                log(f"could not install {' '.join(packages)}; dependent tests will skip")
    finally:
        if ours:
            policy.unlink(missing_ok=True)


def _has_postgres() -> bool:
    """initdb on PATH, or in Debian's versioned server directory (kept off PATH)."""
    return shutil.which("initdb") is not None or any(
        Path("/usr/lib/postgresql").glob("*/bin/initdb")
    )


def system_packages() -> None:
    """nginx (smoke test of the nginx recipe), chromium (report screenshot test),
    postgresql (the side-effect witness's throwaway database: initdb + postgres only,
    the package's own cluster and service are never used) and redis-server (the
    reference gateway's revocation pub/sub: the binary only, a throwaway instance per
    run; the package's own service is never used)."""
    sh("bash", ROOT / "scripts" / "install_nginx.sh", check=False)
    if shutil.which("chromium") is None:
        log("installing chromium for the report test")
        apt_install("chromium")
    if shutil.which("redis-server") is None:
        log("installing redis-server for the revocation tests")
        apt_install("redis-server")
    if not _has_postgres():
        log("installing postgresql for the witness tests")
        apt_install("postgresql")


def missing_system_tools() -> list[str]:
    """What system_packages() should have installed but did not (their tests would skip)."""
    tools = {"nginx": shutil.which("nginx") or Path("/usr/sbin/nginx").exists()}
    tools["chromium"] = shutil.which("chromium") is not None
    tools["redis-server"] = shutil.which("redis-server") is not None
    tools["postgresql"] = _has_postgres()
    return [name for name, present in tools.items() if not present]


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "test"
    rest = argv[1:]
    os.chdir(ROOT)
    if cmd == "setup":
        setup()
        return 0
    if cmd == "gate":
        setup()
        return sh(BIN / "loadgate", "run", "phase2-gate", *rest, check=False)
    if cmd in ("test", "check"):
        setup()
        if cmd == "test":
            system_packages()
            missing = missing_system_tools()
            if missing and os.environ.get("CI") == "true":
                # In CI a skipped Postgres/Redis/nginx test would pass without testing:
                # a machine that cannot install them fails here, saying which.
                log(f"CI: could not install {', '.join(missing)}; their tests would skip")
                return 1
            if missing:
                log(f"not installed: {', '.join(missing)}; their tests will skip")
        steps = [
            [BIN / "ruff", "format", "--check", "."],
            [BIN / "ruff", "check", "."],
            [BIN / "mypy"],  # packages and tests: pyproject [tool.mypy]
            # Exit 5 (no tests collected) stays a failure: never masked.
            [BIN / "python", "-m", "pytest", *rest],
        ]
        for step in steps:
            log("running " + " ".join(str(s).removeprefix(str(BIN) + "/") for s in step))
            rc = sh(*step, check=False)
            if rc != 0:
                log(f"failed ({rc}): {' '.join(map(str, step))}")
                return rc
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
