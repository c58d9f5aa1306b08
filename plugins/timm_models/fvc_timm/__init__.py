"""fvc-timm: timm (PyTorch Image Models) backbones as frame-level fvc detectors.

``model.name: timm`` with ``arch:`` any timm architecture, and the field's baselines by name:
``xception``, ``efficientnet_b4``, ``clip_vit_b16``. Importing this package is cheap (no torch, no
timm); the network lives in ``fvc_timm.model``.
"""

__version__ = "0.1.0"
