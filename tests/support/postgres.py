"""A throwaway PostgreSQL for tests, or a skip that says why there is none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadgate.gateway.postgres_server import PostgresServer, find_pg_bin, throwaway_postgres

__all__ = ["postgres_or_skip"]

SKIP_REASON = "Debian's postgresql is not installed (no initdb): scripts/dev.py test installs it"


def postgres_or_skip() -> Iterator[PostgresServer]:
    """For a fixture: ``yield from postgres_or_skip()``; the cluster is removed after."""
    if find_pg_bin() is None:
        pytest.skip(SKIP_REASON)
    with throwaway_postgres() as pg:
        yield pg
