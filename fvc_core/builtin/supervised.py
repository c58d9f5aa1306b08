"""The built-in ``supervised`` trainer and the ``fvc predict`` command, registered like any plugin.

Nothing heavy at import: torch loads when a trainer is built or a command runs.
"""

from __future__ import annotations

from fvc_core.hookspecs import hookimpl
from fvc_core.training.config import SupervisedConfig


def build_supervised(config: SupervisedConfig):
    from fvc_core.training.trainer import SupervisedTrainer

    return SupervisedTrainer(config)


def _configure_predict(parser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="<output_dir>/<model name> of a finished run")
    parser.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR", help="video files or folders of videos")
    parser.add_argument("-o", "--output", metavar="FILE", help="also write the scores: .csv, .json or .parquet")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")


def _run_predict(args) -> int:
    from fvc_core.training.predict import run_command

    return run_command(args)


@hookimpl
def register_trainers(register):
    register("supervised", build_supervised, config=SupervisedConfig,
             description="k-fold cross-validated training with early stopping, checkpoints and resume")


@hookimpl
def register_commands(add_command):
    add_command("predict", "score videos with the folds' models of a finished run",
                configure=_configure_predict, run=_run_predict)
