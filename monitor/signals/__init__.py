"""Market signals computed from the state: VIX futures term structure (more to come)."""
