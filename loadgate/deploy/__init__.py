"""Running loadgate elsewhere: manifests for a cluster (the harness does not deploy itself)."""
