"""The names other packages code against exist and are exported."""

from __future__ import annotations

import importlib
import inspect

import stub_upstream


def test_package_exports() -> None:
    assert stub_upstream.__all__ == ["StubConfig", "StubProcess", "StubStartError"]


def test_every_module_all_resolves() -> None:
    for name in ("cli", "config", "connection", "faults", "h1", "handler", "ledger", "metrics",
                 "process", "rawhttp", "server", "stamped", "streaming", "ticker", "validate",
                 "vectors",
                 "wire"):  # fmt: skip
        mod = importlib.import_module(f"stub_upstream.{name}")
        for attr in mod.__all__:
            assert hasattr(mod, attr), f"stub_upstream.{name}.{attr}"


def test_entry_point_signatures() -> None:
    from stub_upstream.cli import main
    from stub_upstream.process import StubProcess
    from stub_upstream.server import run_stub

    assert list(inspect.signature(main).parameters)[:1] == ["argv"]
    assert next(iter(inspect.signature(run_stub).parameters)) == "config"
    params = list(inspect.signature(StubProcess).parameters)
    assert params[:2] == ["config", "log_path"]
    for member in ("start", "stop", "url", "pid", "__aenter__", "__aexit__"):
        assert hasattr(StubProcess, member)


def test_stamped_layer_api() -> None:
    """What the load generator builds its client on (docs/timestamps.md)."""
    from stub_upstream import stamped

    assert list(inspect.signature(stamped.connect).parameters) == [
        "host", "port", "protocol_factory", "connect_timeout_s", "force_user",
    ]  # fmt: skip
    assert list(inspect.signature(stamped.serve).parameters) == [
        "sock", "protocol_factory", "force_user",
    ]  # fmt: skip
    assert list(inspect.signature(stamped.StampedReceiver.stamped_data_received).parameters) == [
        "self", "data", "t_ns",
    ]  # fmt: skip
    for member in ("write", "writelines", "write_eof", "can_write_eof", "pause_reading",
                   "resume_reading", "close", "abort", "is_closing", "get_extra_info",
                   "get_write_buffer_size", "set_write_buffer_limits"):  # fmt: skip
        assert callable(getattr(stamped.StampedTransport, member)), member
