"""``fvc sweep``: many runs of one config, each point a run of its own, ranked at the end. One module per part:

- ``spec``: the ``sweep:`` section and the command line's lists, expanded into named points;
- ``plan``: every point with its validated config, nothing written (``--dry-run`` stops there);
- ``folders``: the sweep's folder and its points' run folders (kept, refused, finished);
- ``run``: run the points (one after another, or side by side on a shared executor) and write the ranking;
- ``ranking``: the points ranked on the selection metric, with the seeds' intervals.

``Selection``, ``rank`` and ``table`` (the ranking as text) are named here for the report and the
DuckDB tracker.
"""

from __future__ import annotations

from fvc_core.sweeps.ranking import Selection, rank, selection_of, table

__all__ = ["Selection", "rank", "selection_of", "table"]
