"""Hook implementations of fvc-loaders: the ``metadata`` and ``synthetic`` datasets, the ffpp, celebdf, dfdc
and dfd layouts of ``fvc index --layout``, ``fvc index / verify / prepare / evaluate``.

Nothing heavy is imported here (no av, torch or polars): the factories and
commands import what they need when they are called.
"""

from __future__ import annotations

import argparse
from typing import Any

from fvc_core.contract import hookimpl
from fvc_loaders.config import MetadataConfig, SyntheticConfig


def _metadata(config: MetadataConfig) -> Any:
    from fvc_loaders.dataset import MetadataDataset

    return MetadataDataset(config)


def _synthetic(config: SyntheticConfig) -> Any:
    from fvc_loaders.synthetic import SyntheticDataset

    return SyntheticDataset(config)


@hookimpl
def fvc_addhooks(pluginmanager):
    """The hooks ``fvc prepare`` calls for plugins that extend it (fvc-faces' ``--faces``)."""
    from fvc_loaders import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def register_datasets(register):
    register("metadata", _metadata, config=MetadataConfig,
             description="videos listed in a Parquet table (video_path, label, optional group), decoded with PyAV")
    register("synthetic", _synthetic, config=SyntheticConfig,
             description="generated moving-texture clips and spliced fakes of them, written on first use")


@hookimpl
def register_perturbations(register):
    """The built-in perturbations (a kind fvc-loaders declares in fvc_loaders.hookspecs)."""
    from fvc_loaders.perturb import BUILTINS

    for name, (value, description) in BUILTINS.items():
        register(name, value, description=description)


def _layout(module: str) -> Any:
    def read(root: Any) -> Any:
        import importlib

        return importlib.import_module(f"fvc_loaders.layouts.{module}").read(root)

    return read


@hookimpl
def register_layouts(register):
    """Layouts for ``fvc index --layout`` (a hook the core declares; read by fvc_loaders.layouts.registry)."""
    register("ffpp", _layout("ffpp"), description="FaceForensics++: original_sequences/youtube, "
             "manipulated_sequences/<method>, splits/{train,val,test}.json")
    register("celebdf", _layout("celebdf"), description="Celeb-DF v2: Celeb-real, Celeb-synthesis, YouTube-real, "
             "List_of_testing_videos.txt")
    register("dfdc", _layout("dfdc"), description="DFDC: dfdc_train_part_N/metadata.json")
    register("dfd", _layout("dfd"), description="DeepFakeDetection: original_sequences/actors, "
             "manipulated_sequences/DeepFakeDetection")


def _lazy(module: str, function: str) -> Any:
    def call(arg: argparse.Namespace | argparse.ArgumentParser) -> Any:
        import importlib

        return getattr(importlib.import_module(f"fvc_loaders.{module}"), function)(arg)

    return call


@hookimpl
def register_commands(add_command):
    add_command("index", "build a metadata table from a folder of videos (real/ and fake/ subfolders, "
                "or a dataset's own layout with --layout)",
                configure=_lazy("index", "configure_parser"), run=_lazy("index", "run_command"))
    add_command("verify", "decode every video of a config or table up front and report the bad ones",
                configure=_lazy("verify", "configure_parser"), run=_lazy("verify", "run_command"))
    add_command("prepare", "write letterboxed size x size copies of a table's videos and scaled_metadata.parquet",
                configure=_lazy("prepare", "configure_parser"), run=_lazy("prepare", "run_command"))
    add_command("evaluate", "score other tables with a finished run's fold models (cross-dataset evaluation)",
                configure=_lazy("evaluate", "configure_parser"), run=_lazy("evaluate", "run_command"))
