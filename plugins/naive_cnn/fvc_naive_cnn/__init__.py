"""fvc-naive-cnn: the Naive CNN baseline as an fvc model plugin.

Importing this package is cheap (no torch); the model lives in
``fvc_naive_cnn.model`` and is built through ``fvc_core.create_model("naive_cnn", ...)``.
"""

__version__ = "0.1.0"
