"""The client's view joined with the stub's ledger: where overhead is made."""
