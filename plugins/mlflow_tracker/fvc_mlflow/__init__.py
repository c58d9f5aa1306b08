"""fvc tracker plugin: MLflow."""

__version__ = "0.1.0"
