"""Market state: the latest quote per instrument, classified for pricing."""
