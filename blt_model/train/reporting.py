"""How a training run tells a person what it does, without printing: a `TrainingReporter`
receives plain events (notes, the data read, each stage's start and end, every optimizer step,
every validation). The base class ignores them all and is the default; the command line passes
one that draws a progress bar and tables (`blt_model.cli.report.RichTrainingReporter`).

Only rank 0 of a multi-process run reports; the other ranks get the silent reporter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .documents import DataStats

__all__ = ["DataSummary", "StageOutcome", "TrainingReporter", "SILENT"]


@dataclass(frozen=True)
class DataSummary:
    """What `train` read, before any training starts."""

    train: DataStats
    valid: DataStats | None  # None: the validation bytes were held out of the training documents
    valid_bytes: int
    skipped_short: int  # training documents shorter than min_text_length
    min_text_length: int


@dataclass(frozen=True)
class StageOutcome:
    """How a stage ended (reported when it ends without an error)."""

    stop_reason: str  # "epochs", "max_steps", "max_minutes", "early_stop" or "callback"
    step: int
    best_val_loss: float  # nats per byte; inf when never validated
    nonfinite_steps: int


class TrainingReporter:
    """Receives a training run's events. Every method does nothing: subclass and override the
    ones you want. Arguments are plain data (numbers, strings, dataclasses)."""

    def on_note(self, text: str, warning: bool = False) -> None:
        """Something worth telling (a moved run directory, small data, a halved micro-batch)."""

    def on_data(self, summary: DataSummary) -> None:
        """The training and validation data that was read."""

    def on_stage(self, name: str, total_steps: int | None, start_step: int) -> None:
        """Stage `name` ("entropy" or "blt") starts (at `start_step` when resumed)."""

    def on_step(self, step: int, loss: float, n_bytes: int, lr: float) -> None:
        """An optimizer step was taken: its mean loss (nats/byte) over `n_bytes` predicted bytes."""

    def on_validation(self, stage: str, step: int, metrics: Mapping[str, float]) -> None:
        """Validation metrics (loss, bits_per_byte, accuracy, ...) at `step`."""

    def on_stage_end(self, name: str, outcome: StageOutcome | None) -> None:
        """Stage `name` ended; `outcome` is None when it ended with an error or Ctrl+C."""


SILENT = TrainingReporter()  # the default: reports nothing
