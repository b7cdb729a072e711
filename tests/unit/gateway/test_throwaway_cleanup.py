"""The throwaway PostgreSQL leaves nothing behind, whatever ends it (fake binaries).

``initdb``, ``postgres`` and ``pg_isready`` are shell scripts here: the test is about
the directory and the process, not the database. The abandon path (a third Ctrl-C:
:func:`kill_children`, then ``os._exit``, no ``finally``) is simulated by calling
``kill_children`` and looking before any ``finally`` could run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadgate.gateway import postgres_server as pgmod
from loadgate.gateway.processes import kill_children
from tests.support.procs import gone

SCRIPTS = {
    "initdb": '#!/bin/sh\nmkdir -p "$2"\necho data > "$2/PG_VERSION"\n',
    "postgres": "#!/bin/sh\nexec sleep 60\n",
    "pg_isready": "#!/bin/sh\nexit 0\n",
}


@pytest.fixture
def fake_pg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in SCRIPTS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("LOADGATE_PG_BIN", str(bin_dir))
    monkeypatch.setattr(pgmod, "_run_as", lambda: None)  # the fakes run as whoever we are
    parent = tmp_path / "tmp"
    parent.mkdir()
    monkeypatch.setattr(pgmod, "_parent_dir", lambda ids: str(parent))
    yield parent
    kill_children()  # whatever a failed test left


def test_an_abandoned_run_kills_the_server_and_removes_its_directory(fake_pg: Path) -> None:
    with pgmod.throwaway_postgres() as pg:
        assert (pg.directory / "data" / "PG_VERSION").exists()
        kill_children()  # what the third Ctrl-C does before os._exit
        assert not pg.directory.exists()
        assert gone(pg.pid)
    assert list(fake_pg.iterdir()) == []


def test_abandoned_between_initdb_and_the_server_start(
    fake_pg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    def abandon(bin_dir: Path, root: Path, *args: Any) -> None:
        assert (root / "data" / "PG_VERSION").exists()  # initdb ran
        kill_children()
        seen.append(root.exists())  # os._exit would follow: no finally runs
        raise SystemExit(130)

    monkeypatch.setattr(pgmod, "_start", abandon)
    with pytest.raises(SystemExit), pgmod.throwaway_postgres():
        pass
    assert seen == [False]


def test_the_directory_goes_even_when_the_stop_is_interrupted(
    fake_pg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(proc: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pgmod, "_stop", interrupted)
    with pytest.raises(KeyboardInterrupt), pgmod.throwaway_postgres():
        pass
    assert list(fake_pg.iterdir()) == []
    # The fake server the interrupted stop left is still tracked: the fixture's
    # kill_children() ends it, by its pid.
