"""Comparison across runs and commits: statistics, compare, history."""
