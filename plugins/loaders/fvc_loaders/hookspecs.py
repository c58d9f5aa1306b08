"""Hooks fvc-loaders declares (through ``fvc_addhooks``) for plugins that extend its commands.

Another distribution (fvc-faces, for ``fvc prepare --faces``) implements them in its ``fvc``
entry-point module; the loaders call them and never import that distribution, nor it the loaders:
what ``fvc prepare`` lends such a step comes as an argument (``PrepareTools``).
"""

from __future__ import annotations

from fvc_core.contract import hookspec


@hookspec
def prepare_add_options(parser):
    """Add options of your own to ``fvc prepare``'s ``argparse`` parser (fvc-faces adds ``--faces`` and
    its ``--face-*`` options). With no implementation, ``fvc prepare`` shows ``--faces`` as needing
    the fvc-faces plugin."""


@hookspec(firstresult=True)
def prepare_run(args, tools):
    """Run ``fvc prepare`` your way when your options ask for it (``args``: the parsed command line;
    ``tools``: a ``fvc_loaders.prepare_tools.PrepareTools``, the loaders' reader, encoder, table writer
    and resumable copy plan) and return the exit code; None leaves the run to the loaders' copies."""


@hookspec
def register_perturbations(register):
    """Register perturbations for ``fvc evaluate --perturb NAME[:LEVELS]``.

    ``value``: an object with ``levels`` (a non-empty list, level 1 first) and either
    ``apply(frame, parameter, rng) -> frame`` (damage to an upright ``(H, W, 3)`` uint8 RGB picture at the
    source resolution, ``rng`` a seeded ``numpy.random.Generator``) or ``crf = True`` (its level's
    parameter is the x264 CRF of a real re-encode). A kind of its own: collected like the core's kinds.
    """
