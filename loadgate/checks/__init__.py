"""Phase 2 exit checks beside the load: upstream assertions, real-time streams, metrics lint."""
