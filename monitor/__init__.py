"""condor-monitor: risk monitor for SPX iron condors hedged with a VIX futures layer."""

__version__ = "0.1.0"
