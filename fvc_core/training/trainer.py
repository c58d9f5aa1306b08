"""The ``supervised`` trainer: k-fold cross-validation over the dataset plugin's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fvc_core.tracking import FoldResult, RunSummary
from fvc_core.training.config import SupervisedConfig


class SupervisedTrainer:
    """``run(job)`` trains every fold not finished yet, resuming an interrupted one, and
    returns the cross-fold summary. Safe to call again on the same run folder."""

    def __init__(self, config: SupervisedConfig | None = None):
        self.config = config or SupervisedConfig()

    def run(self, job: Any) -> RunSummary:
        from fvc_core.training import outputs
        from fvc_core.training.data import ClipSource, make_loader
        from fvc_core.training.loop import (
            Environment,
            FoldTraining,
            SkippedVideos,
            resolve_amp,
            resolve_device,
        )
        from fvc_core.training.progress import RunProgress
        from fvc_core.training.splits import load_or_make_splits, table_fingerprint

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
        splits_of = {r: load_or_make_splits(table, base, cfg.folds, cfg.val_fraction, r_seed)
                     for r, r_seed, base in repeats}
        fingerprint = table_fingerprint(table)
        catalog = splits_of[0][0].table.sort("video_path")
        paths = catalog["video_path"].to_list()
        row_of = {p: i for i, p in enumerate(paths)}
        source = ClipSource(job.dataset, paths, catalog["label"].to_list())
        loader, sampler = make_loader(source, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                                      prefetch_factor=cfg.prefetch_factor, seed=seed,
                                      pin_memory=device.type == "cuda")
        skipped = SkippedVideos(run_dir / "skipped_videos.json", getattr(job.dataset, "on_bad_video", "fail"))

        results: list[FoldResult] = []
        total = cfg.folds * cfg.repeats
        with RunProgress(job.console, job.interactive, total, cfg.epochs) as progress:
            for r, r_seed, base in repeats:
                env = Environment(device, amp_dtype, loader, sampler, paths, row_of, skipped, r_seed, progress,
                                  fingerprint)
                if cfg.repeats > 1:
                    job.console.print(f"repeat {r} of {cfg.repeats} (seed {r_seed}): folds "
                                      f"{r * cfg.folds}-{(r + 1) * cfg.folds - 1} in {base}", highlight=False)
                for split in splits_of[r]:
                    # Numbered across the run so trackers keyed on the fold see each one once.
                    fold = r * cfg.folds + split.fold
                    fold_dir = base / f"fold_{split.fold}"
                    done = outputs.read_finished_fold(fold, fold_dir, fingerprint)
                    if done is not None:
                        done.repeat, done.fold_in_repeat = r, split.fold
                        results.append(done)
                        progress.fold_done(fold, "finished earlier, kept")
                        continue
                    parts = {part: [(row_of[p], int(lab)) for p, lab in
                                    split.part(part).select("video_path", "label").iter_rows()]
                             for part in ("train", "val", "test")}
                    try:
                        result = FoldTraining(job, cfg, env, fold, parts, fold_dir, r, split.fold).run()
                    except KeyboardInterrupt:
                        job.console.print(f"[yellow]interrupted:[/] fold {fold} resumes from its last "
                                          "finished epoch on the next `fvc run` of this config")
                        raise
                    job.trackers.end_fold(result)
                    results.append(result)
                    progress.fold_done(fold)
        del env, loader, sampler  # stops the persistent workers now rather than at interpreter exit

        n_test = sum(r.metrics.get("n", 0) for r in results)
        ratio = n_test / (len(results) * len(paths) - n_test) if results and len(paths) else float("nan")
        summary = outputs.write_summary(job.run, results, skipped.as_list(), cfg.repeats, ratio)
        outputs.print_summary(job.console, summary)
        return summary
