"""Hook implementations of fvc-faces: the built-in face detectors ``opencv-haar`` and ``mtcnn``, and
``fvc prepare --faces`` through the hooks fvc-loaders' prepare command calls (``prepare_add_options``,
``prepare_run``).

Nothing heavy is imported here (no cv2, no torch): a factory imports it when a prepare run builds it.
"""

from __future__ import annotations

import argparse
from typing import Any

from fvc_core.contract import hookimpl


def _haar() -> Any:
    from fvc_faces.haar import HaarDetector

    return HaarDetector()


def _mtcnn() -> Any:
    from fvc_faces.mtcnn_detector import MTCNNDetector

    return MTCNNDetector()


@hookimpl
def register_face_detectors(register):
    """Face detectors for ``--face-detector`` (a hook the core declares; read by fvc_faces.detectors)."""
    register("opencv-haar", _haar,
             description="OpenCV's frontal-face Haar cascade (weights inside opencv-python-headless)")
    register("mtcnn", _mtcnn,
             description="MTCNN boxes and five landmarks, in torch (CPU or GPU), weights inside the mtcnn package")


@hookimpl
def prepare_add_options(parser: argparse.ArgumentParser) -> None:
    """``--faces`` and its ``--face-*`` options on ``fvc prepare`` (a hook fvc-loaders declares)."""
    from fvc_faces.prepare import configure_parser

    configure_parser(parser)


@hookimpl
def prepare_run(args: argparse.Namespace, tools: Any) -> int | None:
    """``fvc prepare --faces``: face crops instead of letterboxed copies, with fvc prepare's ``tools``."""
    if not getattr(args, "faces", False):
        _refuse_face_options_without_faces(args)
        return None
    from fvc_faces.prepare import run_command

    return run_command(args, tools)


def _refuse_face_options_without_faces(args: argparse.Namespace) -> None:
    """``--face-align`` without ``--faces`` would make letterboxed copies: the user asked for faces."""
    from fvc_core.contract import UserError
    from fvc_faces.prepare import configure_parser

    parser = argparse.ArgumentParser(add_help=False)
    configure_parser(parser)
    for action in parser._actions:
        if action.dest.startswith("face_") and getattr(args, action.dest, action.default) != action.default:
            raise UserError(f"{action.option_strings[0]}: only with --faces (without it fvc prepare makes "
                            "letterboxed copies of whole frames)")
