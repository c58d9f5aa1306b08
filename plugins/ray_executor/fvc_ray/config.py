"""The ``executor:`` keys of the ray executor (light: no Ray import, so `fvc check` stays instant)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RayExecutorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None, description="Ray cluster to use: host:port of its head, 'auto' (the cluster `ray start` made on this "
        "machine), ray://host:port (Ray Client), or 'local' (start one here). Unset: $RAY_ADDRESS if set, else "
        "a Ray instance started for this run on this machine, bound to 127.0.0.1.")
    num_cpus: float = Field(1.0, gt=0, description="CPUs Ray reserves for each fold (torch uses that many threads).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per fold; 1 gives each fold a GPU of its own.")
    max_concurrent: int | None = Field(None, ge=1, description="At most this many folds at once; unset: as "
                                       "many as the cluster's free CPUs and GPUs allow.")
    max_retries: int = Field(3, ge=0, description="How many times Ray reruns a fold whose worker or node died; "
                             "the rerun resumes from the fold's last checkpoint.")
    connect_timeout_s: float = Field(5.0, gt=0, description="How long to wait for the cluster to answer before "
                                     "stopping with an error.")
    rank_placement: Literal["worker", "pack", "spread", "strict_pack", "strict_spread"] = Field(
        "worker", description="Where the ranks of a data-parallel fold (trainer.workers_per_fold > 1) run. worker: "
        "all in the one Ray worker that got the fold, sharing its num_cpus/num_gpus. pack, spread, strict_pack, "
        "strict_spread: a Ray placement group of one bundle per rank (num_cpus/workers_per_fold CPUs and "
        "num_gpus/workers_per_fold GPUs each) with Ray's strategy of that name, one Ray actor per rank: "
        "strict_spread puts every rank on a node of its own. No effect on a fold of one worker.")
