"""The ``trainer:`` section of experiment.yaml for the ``supervised`` trainer.

No torch here: the config is validated by ``fvc check`` before anything heavy loads.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fvc_core.tracking.metric_names import LOWER_IS_BETTER, SCORE_METRICS, VAL_METRICS  # noqa: F401 (their home before)


class EarlyStoppingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patience: int | None = Field(5, ge=1, description="Epochs without improvement before a fold stops; "
                                 "null trains every epoch (the best epoch is still kept).")
    # val_loss rather than val_auc: on a validation part of a few videos val_auc saturates at 1.0
    # within a few epochs and picks a half-trained model (docs/trainer.md, issue 18).
    metric: str = Field("val_loss", description="Validation metric that picks the best epoch (ties go to "
                        "the lower val_loss): " + ", ".join(VAL_METRICS))
    mode: Literal["auto", "max", "min"] = Field("auto", description="auto: min for val_loss/val_eer, else max")
    min_delta: float = Field(0.0, ge=0, description="Smallest change that counts as an improvement.")
    min_epochs: int | None = Field(
        None, ge=1, description="No epoch before this one is kept or counts against patience: a validation "
        "loss on a few videos is noisy, and its minimum in the first epochs kept an untrained model (issue 35, "
        "docs/video_models.md). null: half of trainer.epochs, rounded up; 1: every epoch may be kept.")
    keep: Literal["best", "last"] = Field(
        "best", description="Which epoch's model scores the test part (and, with refit, how many epochs the "
        "refit trains): best, the epoch with the best metric; last, the last epoch trained, unless early "
        "stopping ended the fold (then the best: the metric had got worse for `patience` epochs).")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in VAL_METRICS:
            raise ValueError(f"unknown metric {value!r}; one of {', '.join(VAL_METRICS)}")
        return value

    def resolved_mode(self) -> Literal["max", "min"]:
        if self.mode != "auto":
            return self.mode
        return "min" if self.metric in LOWER_IS_BETTER else "max"


# A pretrained backbone is fine-tuned this much slower than the head unless backbone_lr says otherwise
# (5e-6 at the default lr of 5e-4, the seed's setting for pretrained backbones).
PRETRAINED_BACKBONE_LR_FACTOR = 0.01


class SupervisedConfig(BaseModel):
    """k-fold cross-validated supervised training (the seed's stage 5)."""

    model_config = ConfigDict(extra="forbid")

    split: Literal["kfold", "official"] = Field(
        "kfold", description="kfold: k stratified (group-aware) folds; official: one fold from the table's "
        "own split column (train/val/test, as `fvc index --layout` writes), the published protocol.")
    folds: int = Field(5, ge=1, description="k of stratified (group-aware) k-fold cross-validation "
                       "(1 with split: official).")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="Share of each fold's training part held out "
                                "for early stopping and best-checkpoint choice.")
    epochs: int = Field(25, ge=1)
    batch_size: int = Field(1, ge=1)
    grad_accum: int = Field(16, ge=1, description="Batches per optimiser step.")
    lr: float = Field(5.0e-4, gt=0, description="Learning rate of the head (and of models without groups).")
    backbone_lr: float | None = Field(None, gt=0, description="Learning rate of the parameters a model "
                                      "lists as 'backbone' in parameter_groups(). null: lr, or lr/100 when the "
                                      "model says its backbone is pretrained (backbone_pretrained = True).")
    weight_decay: float = Field(1.0e-4, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_epochs: float = Field(2, ge=0, description="Linear warm-up, then cosine annealing to 0; "
                                 "stepped per optimiser step. Left unset in a run of fewer epochs than the "
                                 "default 2 (a smoke test with epochs: 1): half the epochs.")
    lr_schedule: Literal["cosine", "constant"] = Field("cosine", description="After the warm-up: cosine "
                                                       "annealing to 0 at the last epoch, or the peak rate kept.")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Gradient clipping; null turns it off.")
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    refit: bool = Field(False, description="After the validation part has chosen the number of epochs, train "
                        "a fresh model on train + val for that many epochs (same schedule) and score the test "
                        "part with its last epoch; model.pt is that model.")
    repeats: int = Field(1, ge=1, description="Repeated cross-validation: the k folds under this many seeds "
                         "(seed, seed+1, ...); test metrics get mean, std and a 95 % confidence interval over "
                         "all repeats x folds. 1 keeps fold_<k>/; more puts each under repeat_<r>/fold_<k>/.")
    class_weights: Literal["balanced", "none"] = "balanced"
    amp: Literal["auto", "off", "fp16", "bf16"] = Field(
        "auto", description="auto: fp16 with a GradScaler on CUDA, off on CPU; bf16 works on CPU too.")
    device: str = Field("auto", description="auto (cuda when available, else cpu), cpu, cuda, cuda:N")
    workers_per_fold: int = Field(
        1, ge=1, description="Processes that train one fold data-parallel (torch.distributed: gloo on CPU, nccl on "
        "CUDA with a GPU each), on the machine that runs the fold. Each step covers batch_size x grad_accum x "
        "workers_per_fold videos; part of the config hash (docs/scale.md).")
    num_workers: int = Field(2, ge=0, description="DataLoader processes decoding videos ahead of the step.")
    num_threads: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="torch's intra-op threads in a training process. auto: the fewest CPUs any limit "
        "allows (the affinity mask, the cgroup CPU quota, OMP_NUM_THREADS, which Ray sets to executor.num_cpus), "
        "with OpenMP's waiting threads sleeping rather than spinning; a number: that many, OpenMP as torch has it "
        "(docs/trainer.md).")
    prefetch_factor: int = Field(2, ge=1, description="Batches each worker prepares ahead.")
    threshold: float = Field(0.5, gt=0, lt=1, description="Fake-score threshold for accuracy, precision, "
                             "recall, F1 and the confusion matrix.")
    aggregation: Literal["mean_logits", "mean_prob", "max", "topk"] = Field(
        "mean_logits", description="A video's fake score from its frames: mean_logits (the model's own video "
        "logits, the mean of its frame logits), mean_prob (mean of the frame probabilities), max, topk (mean of "
        "the top_k frame probabilities). All but mean_logits need a model with frame_logits. Used for validation, "
        "test, fvc predict and fvc evaluate alike, and recorded with every number.")
    top_k: int = Field(3, ge=1, description="k of aggregation: topk (a clip of fewer frames uses them all).")
    calibration: Literal["none", "temperature"] = Field(
        "none", description="temperature: after training, fit one temperature T to the fold's validation part "
        "(never its test part) and score the test part with each video's logit divided by T; metrics.json keeps "
        "the calibration metrics before (uncalibrated_*) and after, predictions.parquet the score before "
        "(score_uncalibrated). Rankings and predictions at a 0.5 threshold do not change. Not with refit (its "
        "model trained on the validation part).")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        head = value.split(":", 1)[0]
        if head not in ("auto", "cpu", "cuda", "mps") or (head in ("auto", "cpu") and ":" in value):
            raise ValueError(f"unknown device {value!r}; auto, cpu, cuda, cuda:N or mps")
        return value

    @model_validator(mode="after")
    def _folds_of_the_split(self) -> SupervisedConfig:
        if self.split == "official":
            if "folds" in self.model_fields_set and self.folds != 1:
                raise ValueError(f"folds={self.folds} with split: official, which is one fold (the table's "
                                 "own train/val/test): set trainer.folds=1 or leave it out")
            self.folds = 1
        elif self.folds < 2:
            raise ValueError(f"folds={self.folds}: k-fold cross-validation needs at least 2 folds")
        return self

    @model_validator(mode="after")
    def _calibration_needs_held_out_validation(self) -> SupervisedConfig:
        if self.calibration == "temperature" and self.refit:
            raise ValueError("calibration=temperature fits T on the validation part, which refit=true trains on: "
                             "set trainer.refit=false or trainer.calibration=none")
        return self

    @model_validator(mode="after")
    def _warmup_within_epochs(self) -> SupervisedConfig:
        if self.warmup_epochs > self.epochs and "warmup_epochs" not in self.model_fields_set:
            # The default must not refuse `trainer.epochs=1`: a setting the user never wrote is not theirs to fix.
            self.warmup_epochs = self.epochs / 2
        elif self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs={self.warmup_epochs} is longer than epochs={self.epochs}")
        return self
