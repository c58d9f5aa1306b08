"""Moved to ``fvc_core.sweeps.ranking``; this name stays until the plugins import it through the contract."""

from fvc_core.sweeps.ranking import Selection, rank, selection_of, table  # noqa: F401
