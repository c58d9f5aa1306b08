"""What ``fvc prepare`` lends a plugin that adds a step to it (fvc-faces' ``--faces``).

Handed over as an argument of the ``prepare_run`` hook (``fvc_loaders.hookspecs``), so the plugin
encodes, reads and resumes exactly as ``fvc prepare``'s own copies do without importing this
distribution. Every field is a module-level function or class: the object pickles by reference
into worker processes. ``executor`` (``fvc prepare --executor ray``) stays with this process: a pickled
copy (a worker's) has none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PrepareTools:
    Encoding: type
    """The copies' encoding (size, crf, preset); ``asdict`` of it is recorded in prepare.json."""
    BAD_TABLE: str
    SCALED_TABLE: str
    SETTINGS: str
    iter_frames: Callable[..., Any]
    """``iter_frames(path)``: every frame, upright, (H, W, 3) uint8 RGB; a BadVideoError naming the file."""
    probe: Callable[..., Any]
    letterbox: Callable[..., Any]
    """``letterbox(picture, size)``: the reader's scaler, centred on black."""
    encode_pictures: Callable[..., Any]
    scale_video: Callable[..., Any]
    write_table: Callable[..., Any]
    map_with_progress: Callable[..., Any]
    plan_copies: Callable[..., Any]
    claim: Callable[..., Any]
    remove_stale_partials: Callable[..., Any]
    target_times: Callable[..., Any]
    """``target_times(start, duration, n)``: the times the uniform sampler reads (fvc_loaders.sampling)."""
    pick_on_screen: Callable[..., Any]
    """``pick_on_screen(frame_times, times)``: the frame on screen at each time."""
    executor: Any = None
    """Where the per-video jobs run: an executor that takes them (``fvc_core.contract.maps_items``), given
    to ``map_with_progress(..., executor=tools.executor, output=1)``; None: the local process pool."""

    def __getstate__(self) -> dict[str, Any]:
        # Workers receive the tools in their jobs' state: the executor (a Ray connection, locks) is the driver's.
        return {**self.__dict__, "executor": None}


def prepare_tools(executor: Any = None) -> PrepareTools:
    from fvc_loaders import prepare
    from fvc_loaders.index import write_table
    from fvc_loaders.letterbox import letterbox
    from fvc_loaders.parallel import map_with_progress
    from fvc_loaders.reader import iter_frames, probe
    from fvc_loaders.sampling import pick_on_screen, target_times

    return PrepareTools(
        Encoding=prepare.Encoding, BAD_TABLE=prepare.BAD_TABLE, SCALED_TABLE=prepare.SCALED_TABLE,
        SETTINGS=prepare.SETTINGS, iter_frames=iter_frames, probe=probe, letterbox=letterbox,
        encode_pictures=prepare.encode_pictures, scale_video=prepare.scale_video, write_table=write_table,
        map_with_progress=map_with_progress, plan_copies=prepare.plan_copies, claim=prepare.claim,
        remove_stale_partials=prepare.remove_stale_partials, target_times=target_times,
        pick_on_screen=pick_on_screen, executor=executor,
    )
