"""Probes beside the load: checks that act on the gateway's side effects while it is loaded."""
