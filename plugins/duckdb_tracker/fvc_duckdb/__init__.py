"""fvc tracker plugin: a DuckDB results database, and the `fvc results` command."""

__version__ = "0.1.0"
