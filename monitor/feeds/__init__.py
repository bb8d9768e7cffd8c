"""Market data feeds: recorded replay files (and, later, the live broker feed)."""
