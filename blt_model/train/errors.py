"""What a training run raises: a run that cannot continue, a bad run directory, Ctrl+C."""

from __future__ import annotations

from pathlib import Path

__all__ = ["RunFileError", "TrainingError", "TrainingInterrupted"]


class TrainingError(RuntimeError):
    """Training cannot continue (non-finite losses, out of memory at batch 1, bad resume state)."""


class RunFileError(TrainingError, ValueError):
    """A run directory's files are missing, unreadable or from another run (bad input)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl+C during training, after `last/` and the resume state were saved in `run_dir`."""

    def __init__(self, run_dir: Path | None) -> None:
        super().__init__(str(run_dir) if run_dir else "")
        self.run_dir = run_dir
