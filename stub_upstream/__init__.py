"""The stub upstream LLM server behind the gateway under test.

Public API (everything else is internal):

* :class:`StubConfig` - latency model, faults, limits;
* :class:`StubProcess` - run the stub as a child process (``await start()``, ``.url``);
* ``stub_upstream.server.run_stub(config)`` - serve in this process (blocks);
* ``stub_upstream.cli.main(argv)`` - ``python -m stub_upstream``;
* :mod:`stub_upstream.content` and :mod:`stub_upstream.ledger_format` - shared
  with the harness (content derivation, ledger record format).

The server modules (uvloop, prometheus_client) are not imported here, so the harness can
import ``content`` and ``StubProcess`` without them.
"""

from stub_upstream.config import StubConfig
from stub_upstream.process import StubProcess, StubStartError

__all__ = ["StubConfig", "StubProcess", "StubStartError"]
