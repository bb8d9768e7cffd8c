"""Option pricing: Black-76 on the forward, implied volatility and greeks."""
