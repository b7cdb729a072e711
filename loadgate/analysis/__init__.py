"""Reading results: compare's statistics and verdicts, history across commits, and a
sweep's decisions (the knee)."""
