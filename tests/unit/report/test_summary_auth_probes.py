"""The summary's revocation and tenant rows: figures when on, "not configured" when off."""

from __future__ import annotations

import io

from rich.console import Console

from loadgate.report.summary import print_summary
from loadgate.result.model import (
    Probes,
    PropagationFigures,
    Result,
    RevocationFigures,
    RevokedKey,
    TenantFigures,
)


def _text(result: Result) -> str:
    buf = io.StringIO()
    print_summary(result, Console(file=buf, width=160, color_system=None))
    return buf.getvalue()


def test_probes_off_say_not_configured() -> None:
    text = _text(Result(verdict="pass", exit_code=0))
    assert "key revocation" in text and "tenant isolation" in text
    assert text.count("not configured") >= 2
    assert "probes.revocation.url or .command unset" in text


def test_probe_figures_with_their_bound_and_the_keys_that_went_wrong() -> None:
    rev = RevocationFigures(
        revoked=2,
        never_rejected=1,
        propagation_s=PropagationFigures(p50=None, max=None),
        interval_ms=50,
        bound_s=0.05,
        keys=[
            RevokedKey(key="sk-lg-000000…", rank=0, baseline_status=200, propagation_s=0.3),
            RevokedKey(key="sk-lg-000001…", rank=1, baseline_status=200, observed_s=12.5),
        ],
    )
    ten = TenantFigures(tried=40, leaked=3, examples=["00000001000000aa status 200"])
    text = _text(Result(verdict="fail", exit_code=1, probes=Probes(revocation=rev, tenants=ten)))
    assert "keys revoked / never rejected" in text and "2 / 1" in text
    assert "unknown: a key was never rejected" in text
    assert "sk-lg-000001… " in text and "not rejected in 12.5 s" in text
    assert "sk-lg-000000…" not in text  # a key that landed fine is not listed
    assert "40 / 3" in text and "leaked: 00000001000000aa status 200" in text


def test_landed_revocations_show_p50_max_and_the_error_bound() -> None:
    rev = RevocationFigures(
        revoked=5, propagation_s=PropagationFigures(p50=0.21, max=0.35), interval_ms=50,
        bound_s=0.051,
    )  # fmt: skip
    text = _text(Result(verdict="pass", exit_code=0, probes=Probes(revocation=rev)))
    assert "0.210 / 0.350" in text
    assert "each ≤ 0.051 s late (probe every 50 ms)" in text
