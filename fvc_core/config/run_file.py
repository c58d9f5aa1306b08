"""The config a finished run was trained with: ``<run_dir>/config.yaml``, as the runner wrote it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fvc_core.errors import UserError, one_line


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config the runner saved as ``<run_dir>/config.yaml``; a UserError in one line
    when the folder is not a run's."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise UserError(f"{path}: not found; RUN_DIR is <output_dir>/<model name> of an `fvc run`")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML ({one_line(exc, with_type=False)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise UserError(f"{path}: not an fvc run config (no model section)")
    return data
