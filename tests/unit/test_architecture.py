"""docs/ARCHITECTURE.md's module map names every module of the three packages, and no other."""

from __future__ import annotations

import re

from tests.support.paths import ROOT as REPO

PACKAGES = ("loadgate", "stub_upstream", "reference_gateway")
_ENTRY = re.compile(r"^( *)(\S+?)(/?)\s{2,}")


def _map_block() -> list[str]:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("```\nloadgate/", 1)[1].split("\n```", 1)[0]
    return ["loadgate/" + block.splitlines()[0], *block.splitlines()[1:]]


def mapped_modules() -> set[str]:
    """Paths the map names, from its indentation (two spaces a level)."""
    stack: list[str] = []
    out: set[str] = set()
    for line in _map_block():
        m = _ENTRY.match(line)
        if m is None:
            continue  # a continuation line
        depth = len(m.group(1)) // 2
        name = m.group(2).rstrip("/")
        stack[depth:] = [name]
        if m.group(3):
            continue  # a folder
        out.add("/".join(stack))
    return out


def package_modules() -> set[str]:
    return {
        p.relative_to(REPO).as_posix()
        for pkg in PACKAGES
        for p in (REPO / pkg).rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }


def test_the_map_names_every_module_and_no_other() -> None:
    mapped, real = mapped_modules(), package_modules()
    assert not real - mapped, f"modules missing from docs/ARCHITECTURE.md: {sorted(real - mapped)}"
    assert not mapped - real, f"docs/ARCHITECTURE.md names no such module: {sorted(mapped - real)}"


def test_the_map_parser_sees_folders_and_files() -> None:
    mapped = mapped_modules()
    assert "loadgate/client/http1.py" in mapped
    assert "stub_upstream/stamped/_clock.py" in mapped
    assert "reference_gateway/_auth.py" in mapped
