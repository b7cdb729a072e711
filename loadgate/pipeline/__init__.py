"""The stages wired together: one run, a sweep of runs, A/B rounds."""
