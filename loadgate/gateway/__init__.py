"""The gateway under test, seen from outside: launch, preflight, Prometheus scrapes."""
