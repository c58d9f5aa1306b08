"""fvc-loaders: video datasets for fvc (PyAV frame reader, metadata tables, synthetic data, index/verify/prepare)."""
