"""The ``supervised`` trainer: k-fold cross-validation over the dataset plugin's table.

``run(job)`` plans the run (every split made and saved before any training), turns each unfinished
fold into a task and hands the tasks to the run's executor (``executor:``; in-process by default).
``run_fold(job, fold)`` trains one fold from the saved plan, in whatever process an executor runs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fvc_core.tracking.events import FoldResult, RunSummary
from fvc_core.training.config import SupervisedConfig


@dataclass
class _Plan:
    """What every fold of a run shares: splits of each repeat, the loader over the run's videos."""

    device: Any
    amp_dtype: Any
    repeats: list[tuple[int, int, Path]]
    """(repeat, its seed, its folder)."""
    splits_of: dict[int, list[Any]]
    fingerprint: str
    paths: list[str]
    row_of: dict[str, int]
    loader: Any
    sampler: Any
    skipped: Any


class SupervisedTrainer:
    """``run(job)`` trains every fold not finished yet, resuming an interrupted one, and
    returns the cross-fold summary. Safe to call again on the same run folder."""

    def __init__(self, config: SupervisedConfig | None = None):
        self.config = config or SupervisedConfig()
        self._plan_of: tuple[str, _Plan] | None = None

    def protocol(self) -> dict[str, Any]:
        """The split and scoring part of the run's protocol (run.json, metrics files, trackers)."""
        cfg = self.config
        out: dict[str, Any] = {"split": cfg.split, "folds": cfg.folds, "repeats": cfg.repeats,
                               "val_fraction": cfg.val_fraction, "refit": cfg.refit, "aggregation": cfg.aggregation,
                               "threshold": cfg.threshold}
        if cfg.split == "official":
            # The table's own validation part when it has one; val_fraction only carves one otherwise.
            out["val_fraction"] = f"the table's val rows, else {cfg.val_fraction} of train"
        if cfg.aggregation == "topk":
            out["top_k"] = cfg.top_k
        return out

    def _threads(self, job: Any) -> None:
        """torch's thread count, set before the first import of torch in this process (_plan's)."""
        from fvc_core.training.threads import set_up_threads

        threads = set_up_threads(self.config.num_threads)
        policy = os.environ.get("OMP_WAIT_POLICY", "OpenMP's default")
        job.console.print(f"torch: {threads.count} intra-op thread(s) ({threads.why}), OMP_WAIT_POLICY {policy}",
                          highlight=False)

    def _plan(self, job: Any) -> _Plan:
        from fvc_core.training.data import ClipSource, make_loader
        from fvc_core.training.loop import SkippedVideos, resolve_amp, resolve_device
        from fvc_core.training.splits import load_or_make_splits, table_fingerprint

        key = f"{job.run.run_dir}|{job.run.run_id}"
        if self._plan_of is not None and self._plan_of[0] == key:
            return self._plan_of[1]
        cfg = self.config
        run_dir = Path(job.run.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        seed = int(job.config.seed)
        device = resolve_device(cfg.device)
        amp_dtype = resolve_amp(cfg.amp, device)
        # Every split of every repeat is made (and checked) before any training starts. Repeat r
        # splits under seed + r; with one repeat the folders are fold_<k>/ as they always were.
        table = job.dataset.table()
        repeats = [(r, seed + r, run_dir if cfg.repeats == 1 else run_dir / f"repeat_{r}")
                   for r in range(cfg.repeats)]
        splits_of = {r: load_or_make_splits(table, base, cfg.folds, cfg.val_fraction, r_seed,
                                            official=cfg.split == "official")
                     for r, r_seed, base in repeats}
        catalog = splits_of[0][0].table.sort("video_path")
        paths = catalog["video_path"].to_list()
        source = ClipSource(job.dataset, paths, catalog["label"].to_list())
        loader, sampler = make_loader(source, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                                      prefetch_factor=cfg.prefetch_factor, seed=seed,
                                      pin_memory=device.type == "cuda")
        skipped = SkippedVideos(run_dir / "skipped_videos.json", getattr(job.dataset, "on_bad_video", "fail"))
        plan = _Plan(device, amp_dtype, repeats, splits_of, table_fingerprint(table), paths,
                     {p: i for i, p in enumerate(paths)}, loader, sampler, skipped)
        self._plan_of = (key, plan)
        return plan

    def _release(self) -> None:
        self._plan_of = None  # stops the loader's persistent workers now rather than at interpreter exit

    def _fold(self, plan: _Plan, repeat: int, fold_in_repeat: int) -> tuple[int, Path, Any, FoldResult | None]:
        """The fold's number across the run, its folder, its split, and its result if it finished earlier."""
        from fvc_core.training import outputs

        r, _, base = plan.repeats[repeat]
        split = plan.splits_of[r][fold_in_repeat]
        # Numbered across the run so trackers keyed on the fold see each one once.
        number = r * self.config.folds + split.fold
        fold_dir = base / f"fold_{split.fold}"
        done = outputs.read_finished_fold(number, fold_dir, plan.fingerprint)
        if done is not None:
            done.repeat, done.fold_in_repeat = r, split.fold
        return number, fold_dir, split, done

    def _train(self, job: Any, plan: _Plan, repeat: int, number: int, fold_dir: Path, split: Any,
               progress: Any, ranks: Any = None, device: Any = None) -> FoldResult:
        """Train the fold here, or (``workers_per_fold`` > 1 and not a rank already) on that many
        processes started for it; ``ranks``/``device``: this process's place in such a fold."""
        from fvc_core.training.loop import Environment, FoldTraining

        if ranks is None and self.config.workers_per_fold > 1:
            from fvc_core.errors import UserError

            # Ranks are started by the runtime from the fold's task (FoldTask.workers): a trainer called
            # without an executor (its run(job) from a script) cannot start them.
            raise UserError(f"trainer.workers_per_fold: {self.config.workers_per_fold} needs an executor to start "
                            "the fold's ranks (`fvc run`, `fvc sweep`); this run has none")
        r, r_seed, _ = plan.repeats[repeat]
        env = Environment(device or plan.device, plan.amp_dtype, plan.loader, plan.sampler, plan.paths, plan.row_of,
                          plan.skipped, r_seed, progress, plan.fingerprint, ranks)
        parts = {part: [(plan.row_of[p], int(lab)) for p, lab in
                        split.part(part).select("video_path", "label").iter_rows()]
                 for part in ("train", "val", "test")}
        return FoldTraining(job, self.config, env, number, parts, fold_dir, r, split.fold).run()

    def run_rank(self, job: Any, fold: int, repeat: int, rank: int, world: int, port: int,
                 host: str = "127.0.0.1", local_rank: int | None = None,
                 local_world: int | None = None) -> FoldResult | None:
        """One rank of a data-parallel fold (``fold`` within ``repeat``), in a process of its own that
        ``fvc_core.fold_ranks`` started: join the fold's process group at ``host:port`` and train
        this rank's share. Rank 0 writes the fold's files and returns its result; the others None.

        ``local_rank``/``local_world`` (default: ``rank``/``world``, every rank on one machine): this
        rank's place among the ranks that share its process's CPUs and GPUs; a rank that Ray placed in a
        bundle of its own (``executor.rank_placement``) is ``0`` of ``1`` there."""
        local_rank = rank if local_rank is None else local_rank
        local_world = world if local_world is None else local_world
        if self.config.num_threads == "auto":
            # The CPUs this process may use, shared among the ranks beside it (read by _threads below).
            from fvc_core.training.threads import auto_threads

            os.environ["OMP_NUM_THREADS"] = str(max(1, auto_threads().count // local_world))
        self._threads(job)  # first: what follows loads torch
        import torch

        from fvc_core.training.distributed import check_devices, join_group, leave_group
        from fvc_core.training.progress import RunProgress

        plan = self._plan(job)
        check_devices(plan.device, local_world)
        number, fold_dir, split, done = self._fold(plan, repeat, fold)
        if done is not None:
            return done
        device = plan.device
        if device.type == "cuda":  # a GPU per rank, local rank r on the r-th the process sees
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        ranks = join_group(rank, world, port, device, host)
        try:
            plan.skipped.writes = ranks.writes
            with RunProgress(job.console, False, 1, self.config.epochs) as progress:
                return self._train(job, plan, repeat, number, fold_dir, split, progress, ranks=ranks, device=device)
        finally:
            leave_group()

    def run_fold(self, job: Any, fold: int, repeat: int = 0) -> FoldResult:
        """Train one fold (``fold`` within ``repeat``) from the run's saved splits, or return it as
        finished; what an executor calls in a process of its own (a Ray worker)."""
        self._threads(job)  # first: what follows loads torch
        from fvc_core.training.progress import RunProgress

        plan = self._plan(job)
        number, fold_dir, split, done = self._fold(plan, repeat, fold)
        if done is not None:
            return done
        with RunProgress(job.console, False, 1, self.config.epochs) as progress:
            return self._train(job, plan, repeat, number, fold_dir, split, progress)

    def run(self, job: Any) -> RunSummary:
        self._threads(job)  # first: the imports below load torch
        from fvc_core.executors import FoldTask
        from fvc_core.training import outputs
        from fvc_core.training.loop import SkippedVideos
        from fvc_core.training.progress import RunProgress

        cfg = self.config
        plan = self._plan(job)
        results: list[FoldResult] = []
        with RunProgress(job.console, job.interactive, cfg.folds * cfg.repeats, cfg.epochs) as progress:
            tasks: list[FoldTask] = []
            todo: dict[tuple[int, int], tuple[int, Path, Any]] = {}
            for r, r_seed, base in plan.repeats:
                if cfg.repeats > 1:
                    job.console.print(f"repeat {r} of {cfg.repeats} (seed {r_seed}): folds "
                                      f"{r * cfg.folds}-{(r + 1) * cfg.folds - 1} in {base}", highlight=False)
                for split in plan.splits_of[r]:
                    number, fold_dir, split, done = self._fold(plan, r, split.fold)
                    if done is not None:
                        results.append(done)
                        progress.fold_done(number, "finished earlier, kept")
                        continue
                    task = FoldTask.of(job, split.fold, r, workers=cfg.workers_per_fold)
                    tasks.append(task)
                    todo[task.key] = (number, fold_dir, split)

            current: list[int] = []

            def in_process(task: FoldTask, events: Any) -> FoldResult:
                number, fold_dir, split = todo[task.key]
                current[:] = [number]
                return self._train(job, plan, task.repeat, number, fold_dir, split, progress)

            # The executor runs `in_process` when the folds stay in this process, where a fold shares the
            # loader (and its warm workers) of the one before; elsewhere the task alone rebuilds what it
            # needs from the saved plan (the runtime's choice, not the trainer's). No executor: one after
            # another, here.
            executor = getattr(job, "executor", None)
            runs = (executor.run(tasks, in_process, job.trackers) if executor is not None
                    else ((task, in_process(task, job.trackers)) for task in tasks))
            try:
                for _task, result in runs:
                    job.trackers.end_fold(result)
                    results.append(result)
                    progress.fold_done(result.fold)
            except KeyboardInterrupt:
                which = f"fold {current[0]}" if current else "the unfinished folds"
                # A sweep's point is resumed by the sweep: `fvc run` of the YAML would train its base config.
                again = "`fvc sweep` command" if job.run.sweep else "`fvc run` of this config"
                job.console.print(f"[yellow]interrupted:[/] {which} resumes from its last finished epoch on "
                                  f"the next {again}")
                raise
        results.sort(key=lambda res: res.fold)
        paths = plan.paths
        # Read back: folds run elsewhere record the videos they skipped in the same file.
        skipped = SkippedVideos(plan.skipped.path, plan.skipped.policy).as_list()
        self._release()
        plan = None  # the last reference to the loader: its persistent workers stop now, not at exit

        n_test = sum(r.metrics.get("n", 0) for r in results)
        ratio = n_test / (len(results) * len(paths) - n_test) if results and len(paths) else float("nan")
        summary = outputs.write_summary(job.run, results, skipped, cfg.repeats, ratio)
        outputs.print_summary(job.console, summary)
        return summary
