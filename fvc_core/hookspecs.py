"""The fvc plugin contract: the one file a plugin author reads.

A plugin is a module of hook implementations, named by an entry point in the
group ``fvc`` of its distribution::

    [project.entry-points.fvc]
    my_model = "my_package.plugin"

Every registration hook receives a ``register`` callback; call it once per thing
the plugin provides::

    register(name, factory, config=MyConfig, description="one line")

``config`` is a pydantic model of the plugin's own keys (the keys that sit
beside ``name`` in its section of experiment.yaml). ``factory(config)`` receives
an instance of it and builds the object. Keep plugin modules free of heavy
imports (torch, av, mlflow...): import them inside the factory, so that
``fvc --help``, ``fvc plugins`` and ``fvc check`` stay instant.

The types named below (``Register``, ``Dataset``, ``Job``, ``RunInfo``, ``FoldResult``,
``RunSummary``, ``Tracker``, ``TrackerConfig``, ``FoldTask``, ``Executor``, ``UserError``...) and
``hookimpl`` itself are all importable from one module, ``fvc_core.contract``.

The core's own console tracker, ``supervised`` trainer and ``local`` executor register
through these same hooks (``fvc_core/builtin/``). Every ``register_<kind>(register)`` hookspec, here
or one a plugin declares in ``fvc_addhooks``, is a kind the registry collects the same way.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("fvc")
hookimpl = pluggy.HookimplMarker("fvc")


@hookspec(historic=True)
def fvc_addhooks(pluginmanager):
    """Declare hooks of the plugin's own (pytest's ``pytest_addhooks`` is the model)::

        @hookimpl
        def fvc_addhooks(pluginmanager):
            from my_package import hookspecs  # functions marked with fvc_core.contract.hookspec
            pluginmanager.add_hookspecs(hookspecs)

    Called once per plugin as it is loaded (a historic hook: plugins loaded before it declare
    them are held to the declared signature too). A hookspec ``register_<kind>(register)`` is a
    kind of its own: every enabled plugin's implementations are collected into the registry like
    the core's kinds (``fvc_core.contract.registered(kind)``). Any other hook is the declaring
    plugin's to call (``fvc_core.contract.plugin_hooks()``): how two plugins integrate without
    importing each other.
    """


@hookspec
def register_datasets(register):
    """Register dataset plugins, selected by ``data.name``.

    ``factory(config)`` returns a ``fvc_core.contract.Dataset``: an object with

    - ``table() -> polars.DataFrame``: one row per video with ``video_path``
      (absolute, str), ``label`` (int 0 = real, 1 = fake) and ``group`` (str:
      videos sharing a group never straddle a split; the path itself when the
      data has no groups); other columns are passed along. Raises
      ``fvc_core.errors.UserError`` for a bad table, before any decoding.
    - ``read_video(path, *, augment=False, seed=0) -> torch.Tensor``: uint8
      ``(T, 3, H, W)``, the same T for every video; an evaluation read
      (``augment=False``) may return ``(K, T, 3, H, W)``, K clips of the video,
      which the trainer scores one by one and averages as fake probabilities
      (``fvc_core.training.clips``). Raises
      ``fvc_core.errors.BadVideoError`` for a video it cannot read.
    - ``on_bad_video``: ``"fail"`` or ``"skip"``, the policy the trainer applies.
    - ``protocol() -> dict``: how a clip is made (frames, size, sampler...), so
      that every number can be traced to how it was measured.
    - its config model's ``clip_spec() -> fvc_core.contract.ClipSpec`` (optional):
      the clips it gives (frames, size, sampler, fps), checked against the model's
      ``model_input()``.
    - ``check() -> list[str]`` (optional): what ``fvc check`` can verify without
      decoding or writing (table, columns, labels, files exist); a UserError for
      a problem, else notes to show.
    """


@hookspec
def register_models(register):
    """Register model plugins, selected by ``model.name``.

    ``factory(config)`` returns a ``torch.nn.Module`` whose ``forward(x)`` takes a
    batch of clips (uint8 or float, ``(N, T, C, H, W)``) and returns video logits
    ``(N, num_classes)``. The model says what it needs with a method of its config
    model, ``model_input() -> fvc_core.contract.ModelInput`` (frames, size, layout,
    consecutive frames, fps); a dataset's config says what it gives with
    ``clip_spec() -> ClipSpec``; a mismatch is a config error from ``fvc check`` and
    ``fvc run`` before anything is built. How the model
    evaluates is its own business: trainers only call ``train()`` / ``eval()``.
    Optional: ``parameter_groups() -> dict[str, list[Parameter]]`` with keys
    ``"backbone"`` and ``"head"``; and ``backbone_pretrained = True`` when the
    backbone's weights are pretrained: only then does the supervised trainer give
    it a lower rate (lr/100, unless ``trainer.backbone_lr`` is set). A backbone
    trained from scratch learns at ``lr``, like the head. And ``frame_logits(x) -> (N, T,
    num_classes)``: per-frame logits, which give the frame-level ROC AUC, the video
    aggregations other than the model's own (``trainer.aggregation``) and ``fvc explain``;
    when ``forward`` accepts ``return_frame_logits=True`` (returning both), one pass serves both.
    ``fvc_core.create_model(name, config)`` calls the factory.
    """


@hookspec
def register_trainers(register):
    """Register trainer plugins, selected by ``trainer.name``.

    ``factory(config)`` returns an object with ``run(job) -> RunSummary``, where
    ``job`` is a ``fvc_core.contract.Job`` (resolved config, dataset, a model
    builder, trackers, output folder) and ``RunSummary`` comes from
    ``fvc_core.contract``.
    """


@hookspec
def register_trackers(register):
    """Register tracker plugins, selected by listing their names in ``trackers:``.

    A tracker's settings sit in a top-level section of its own name; its config
    model should subclass ``fvc_core.contract.TrackerConfig`` (which adds
    ``fail_fast``). ``factory(config)`` returns a ``fvc_core.contract.Tracker``:
    the trainer reports run start, per-epoch metrics, fold end, run end and
    failure to it. A tracker that raises is reported once and switched off, so
    tracking never costs a run its results (unless ``fail_fast: true``).
    """


@hookspec
def register_executors(register):
    """Register executor plugins, selected by ``executor.name`` (default ``local``).

    An executor decides where the folds of a run are trained. ``factory(config)``
    returns a ``fvc_core.contract.Executor``: ``start()`` connects to whatever
    runs the tasks (a UserError in one line if it cannot, before anything is
    written), ``run(tasks, fn, events)`` calls ``fn(task, events)`` for every
    ``fvc_core.contract.FoldTask`` and yields ``(task, result)`` as each fold
    finishes, every event of a task delivered to ``events`` before its result;
    ``close()`` releases what ``start`` took. ``in_process`` says whether ``fn``
    runs in the calling process; an executor that leaves it receives
    ``fvc_core.fold_worker.run_fold_task``, which rebuilds the run from the task.
    """


@hookspec
def register_layouts(register):
    """Register dataset folder layouts, selected by ``fvc index --layout NAME`` (fvc-loaders).

    ``factory`` is the reader itself: ``read(root) -> (videos, problems)``, the videos
    (``fvc_loaders.layouts.Video``: path, label, identities, method, compression, split) found under
    ``root`` and one line per thing that does not match the dataset's published layout.
    """


@hookspec
def register_decoders(register):
    """Register frame decoders, selected by ``data.decoder`` (fvc-loaders; ``pyav`` is its own).

    ``factory()`` builds the decoder (import heavy libraries there): an object with ``read(path, plan,
    size) -> list[np.ndarray]``, one upright picture per target time, scaled to fit ``size`` x ``size``
    (``fvc_core.contract.fit``), ``(h, w, 3)`` uint8 RGB; ``plan()`` gives the target times on the
    PyAV reader's timeline of ``path``. A ``BadVideoError`` naming the file for a video it cannot read.
    """


@hookspec
def register_face_detectors(register):
    """Register face detectors, selected by ``fvc prepare --faces --face-detector NAME`` (fvc-faces).

    ``factory()`` is called once per worker process and returns an object with ``name`` and
    ``version`` (recorded in prepare.json) and ``detect(frame) -> [(x0, y0, x1, y1, score), ...]``
    for an RGB picture ``(H, W, 3)`` uint8.
    """


@hookspec
def register_commands(add_command):
    """Add subcommands to the ``fvc`` command line.

    ``add_command(name, help, configure, run)``: ``configure(parser)`` adds
    arguments to an ``argparse.ArgumentParser``; ``run(args)`` does the work and
    returns an exit code or None. Raise ``fvc_core.errors.UserError`` for a user
    mistake: it is shown as one line and the command exits with code 2.
    """
