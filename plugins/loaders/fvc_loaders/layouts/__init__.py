"""Official folder layouts of public deepfake datasets, read into fvc's metadata table (``fvc index --layout``).

A layout is a function ``read(root) -> (videos, problems)``: the :class:`Video` rows it found and one
line per thing that does not match the dataset's published layout. Layouts are registered by plugins
(the four built in here included) through a ``register_layouts(register)`` hook implementation in
their ``fvc`` entry-point module; see ``registry.py`` and docs/datasets.md.
"""

from fvc_loaders.layouts.registry import Layout, Video, available_layouts, get_layout
from fvc_loaders.layouts.table import build_layout_table

__all__ = ["Layout", "Video", "available_layouts", "build_layout_table", "get_layout"]
