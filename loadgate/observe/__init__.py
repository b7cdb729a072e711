"""Watching a run while it goes: progress display and live metrics."""
