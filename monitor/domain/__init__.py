"""Domain value types: instruments, quotes, greeks and alerts, with no I/O."""
