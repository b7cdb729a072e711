"""Probes beside the load: checks that act on the gateway while it is loaded."""
