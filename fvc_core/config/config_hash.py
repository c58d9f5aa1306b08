"""A run's identity: the hash of what its numbers depend on (seed, data, model, trainer).

Its own module, below the config model that calls it and the comparison of run folders
(``fvc_core.config.identity``) that explains it, so that neither imports the other for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

IDENTITY_KEYS = ("seed", "data", "model", "trainer")
"""What a run's numbers depend on; trackers, output folder and executor are not part of it."""


def identity_hash(config: Mapping[str, Any]) -> str:
    """The hash of a config as ``ResolvedConfig.as_dict()`` writes it (what config.yaml holds)."""
    ident = {k: v for k, v in config.items() if k in IDENTITY_KEYS}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
