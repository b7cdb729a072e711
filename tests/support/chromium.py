"""Headless Chromium for report tests: find or install it, screenshot, DOM dump, PNG check.

Debian's ``chromium`` is installed with apt when it is missing and we run as root
with apt available (the same rule as scripts/dev.py); a file lock keeps two test
processes from running apt at once. Everywhere else :class:`Unavailable` says
why, and the test skips with that reason. The PNG decoder is standard library
only (zlib + struct) so the check needs no imaging package.
"""

from __future__ import annotations

import fcntl
import math
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from html.parser import HTMLParser
from pathlib import Path

__all__ = [
    "FLAGS",
    "Unavailable",
    "decode_png",
    "distinct_colours",
    "dump_dom",
    "ensure_chromium",
    "find_chromium",
    "plot_series",
    "screenshot",
]

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
_LOCK = Path(tempfile.gettempdir()) / "loadgate-chromium-install.lock"
_TIMEOUT_S = 90


class Unavailable(RuntimeError):
    """Chromium is not installed and cannot be installed here (the message says why)."""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def ensure_chromium() -> str:
    """The chromium executable, installing Debian's package first when possible."""
    exe = find_chromium()
    if exe:
        return exe
    if os.geteuid() != 0:
        raise Unavailable(
            "chromium is not installed and we are not root (apt-get install chromium)"
        )
    if shutil.which("apt-get") is None:
        raise Unavailable("chromium is not installed and apt-get is not available")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing it
        exe = find_chromium()
        if exe:
            return exe
        for cmd in (
            ["apt-get", "install", "-y", "-q", "chromium"],
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "chromium"],
        ):
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=900, check=False
            )
            if cmd[1] == "install" and proc.returncode == 0:
                break
        exe = find_chromium()
    if not exe:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        raise Unavailable(f"apt-get install chromium failed: {tail[0]}")
    return exe


def _run(exe: str, profile_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [exe, *FLAGS, f"--user-data-dir={profile_dir}", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[-500:]
        raise RuntimeError(f"chromium exited {proc.returncode}: {err}")
    return proc


def screenshot(
    exe: str, html: Path, png: Path, tmp: Path, size: tuple[int, int] = (1280, 2400)
) -> bytes:
    """Render ``html`` and write a ``size`` screenshot to ``png``; return its bytes."""
    _run(
        exe,
        tmp / "profile-shot",
        f"--screenshot={png}",
        f"--window-size={size[0]},{size[1]}",
        html.resolve().as_uri(),
    )
    return png.read_bytes()


def dump_dom(exe: str, html: Path, tmp: Path) -> str:
    """The DOM after rendering, serialised by the browser."""
    proc = _run(exe, tmp / "profile-dom", "--dump-dom", html.resolve().as_uri())
    return proc.stdout.decode("utf-8", errors="replace")


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """``(width, height, bytes per pixel, rows)`` of an 8-bit RGB/RGBA/grey PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, []
    width = height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, interlace {interlace}")
            bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        cur = bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:
            for i in range(bpp, stride):
                cur[i] = (cur[i] + cur[i - bpp]) & 0xFF
        elif ftype == 2:
            cur = bytearray((c + p) & 0xFF for c, p in zip(cur, prev, strict=True))
        elif ftype == 3:
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                cur[i] = (cur[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                upleft = prev[i - bpp] if i >= bpp else 0
                cur[i] = (cur[i] + _paeth(left, prev[i], upleft)) & 0xFF
        rows.append(bytes(cur))
        prev = cur
    return width, height, bpp, rows


def distinct_colours(png: bytes, limit: int = 10_000) -> int:
    """How many different pixel values the image holds (stops counting at ``limit``)."""
    _, _, bpp, rows = decode_png(png)
    seen: set[bytes] = set()
    for row in rows:
        for i in range(0, len(row), bpp):
            seen.add(row[i : i + bpp])
        if len(seen) >= limit:
            break
    return len(seen)


Points = tuple[tuple[float, ...], tuple[float | None, ...]]


class _Plots(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, Points]] = {}
        self.paths: dict[str, dict[str, str]] = {}
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self._stack.append(a.get("id", ""))
        elif tag == "path" and a.get("class") == "series" and self._stack:
            chart = self._stack[-1]
            xs = tuple(float(v) for v in a["data-x"].split(",") if v)
            ys = tuple(None if v == "null" else float(v) for v in a["data-y"].split(",") if v)
            self.charts.setdefault(chart, {})[a["data-series"]] = (xs, ys)
            self.paths.setdefault(chart, {})[a["data-series"]] = a.get("d", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self._stack:
            self._stack.pop()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "svg":
            self.handle_endtag(tag)


def plot_series(html: str) -> tuple[dict[str, dict[str, Points]], dict[str, dict[str, str]]]:
    """Per chart id: ``{series name: (xs, ys)}`` read back from the data attributes,
    and ``{series name: path d}`` (what was actually drawn)."""
    p = _Plots()
    p.feed(html)
    p.close()
    for series in p.charts.values():
        for xs, ys in series.values():
            assert len(xs) == len(ys), "data-x and data-y differ in length"
            assert all(y is None or math.isfinite(y) for y in ys)
    return p.charts, p.paths
