"""``python -m reference_gateway``: parse flags, serve until SIGTERM, drain, exit."""

from __future__ import annotations

from reference_gateway._server import main

raise SystemExit(main())
