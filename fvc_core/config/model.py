"""What a validated experiment config is: the core's own keys, and each plugin's section resolved.

``ResolvedConfig`` is what every command works from once experiment.yaml has been read and checked
(``fvc_core.config.validation``); its ``as_dict()`` is what a run's config.yaml holds, and its
``hash()`` the identity of what is measured (``fvc_core.config.identity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from fvc_core.config.config_hash import identity_hash

PLUGIN_SECTIONS = {"data": "datasets", "model": "models", "trainer": "trainers", "executor": "executors"}
# A section's plugin when the config does not name one.
DEFAULT_PLUGIN = {"trainer": "supervised", "executor": "local"}
# Sections whose keys may be given without a name (executor.max_retries=1 means the default executor's).
NAME_OPTIONAL = {"executor"}
# Plugins that live in a distribution of their own: an unknown name says what to install.
PLUGIN_DISTRIBUTIONS = {("executors", "ray"): "fvc-ray (pip install -e plugins/ray_executor)"}


class PluginsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disable: list[str] = Field(default_factory=list, description="Installed plugins to leave out, by name.")


class CoreConfig(BaseModel):
    """The core's own keys; the plugin sections are validated by their plugins."""

    model_config = ConfigDict(extra="forbid")
    experiment: str = "experiment"
    seed: int = Field(42, ge=0)
    output_dir: Path = Path("runs")
    data: dict[str, Any]
    model: dict[str, Any]
    trainer: dict[str, Any] = Field(default_factory=lambda: {"name": "supervised"})
    executor: dict[str, Any] = Field(default_factory=lambda: {"name": "local"},
                                     description="Where the folds run: name picks the executor plugin.")
    trackers: list[str] = Field(default_factory=lambda: ["console"])
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    sweep: dict[str, Any] | None = Field(None, description="What `fvc sweep` varies (docs/sweeps.md); "
                                         "`fvc run` runs the config without it. Not part of the config hash.")


@dataclass
class Section:
    name: str
    config: BaseModel

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.config.model_dump(mode="json")}


class _NoKeys(BaseModel):
    """The default executor's keys: the built-in ``local`` executor has none (its own model is the
    same), and the config does not import a built-in plugin to say so."""

    model_config = ConfigDict(extra="forbid")


def _local_executor() -> Section:
    return Section("local", _NoKeys())


@dataclass
class ResolvedConfig:
    experiment: str
    seed: int
    output_dir: Path
    data: Section
    model: Section
    trainer: Section
    trackers: list[Section]
    disabled_plugins: list[str] = field(default_factory=list)
    source: str | None = None
    executor: Section = field(default_factory=_local_executor)
    """How the folds are executed; not part of the hash: where a fold runs never changes its numbers."""
    run_name: str | None = None
    """The run folder's name in output_dir: a sweep's point id; None: the model's name."""
    sweep: dict[str, Any] | None = None
    """The sweep point this run is (``RunInfo.sweep``); None for a plain `fvc run`. Not in the hash."""

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / (self.run_name or self.model.name)

    def as_dict(self) -> dict[str, Any]:
        """Every key with its default filled in: what config.yaml of a run holds."""
        out: dict[str, Any] = {
            "experiment": self.experiment,
            "seed": self.seed,
            "output_dir": str(self.output_dir),
            "data": self.data.as_dict(),
            "model": self.model.as_dict(),
            "trainer": self.trainer.as_dict(),
            "executor": self.executor.as_dict(),
            "trackers": [t.name for t in self.trackers],
        }
        for t in self.trackers:
            out[t.name] = t.config.model_dump(mode="json")
        if self.disabled_plugins:
            out["plugins"] = {"disable": list(self.disabled_plugins)}
        return out

    def hash(self) -> str:
        """Identity of what is measured: seed, data, model, trainer (not trackers or output folder)."""
        return identity_hash(self.as_dict())

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.as_dict(), sort_keys=False)


