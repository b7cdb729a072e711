"""Is the run valid, and did it pass: self-monitoring, gates, verdict."""
