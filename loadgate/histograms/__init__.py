"""How latencies become numbers: HDR recording, summaries, .hlog export."""
