"""`TrainState`: where a training stage stands (step, data position, best validation loss, time
spent), and `state.pt`, the file that lets an interrupted run resume exactly.

state.pt is a torch.save of tensors and plain containers (it loads with weights_only): the
`TrainState` fields at the top level, plus "format", "stage", "model", "optimizer", "rng" and
"config". It is written to a temporary name and renamed, so a kill at any moment leaves the
previous version readable.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..guards import require_regular_file
from ..io.files import atomic_write_bytes
from .config import TrainingConfig
from .errors import RunFileError

__all__ = ["STATE_FORMAT", "STATE_NAME", "TrainState", "load_state", "resume_state", "save_state",
           "write_state_file"]

STATE_NAME = "state.pt"
STATE_FORMAT = 1


@dataclass
class TrainState:
    """The counters of one training stage; everything else in state.pt is weights and RNG."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0
    batch_in_epoch: int = 0  # loader batches of this epoch already used (resume skips them)
    best_val_loss: float = math.inf
    bad_evals: int = 0  # evaluations in a row without improvement (early stopping)
    nonfinite_steps: int = 0
    consecutive_nonfinite: int = 0
    micro_batch_size: int = 0  # 0 = whole loader batches; halved on CUDA out-of-memory
    elapsed_s: float = 0.0  # training seconds over every invocation: the time budget spans resumes
    bytes_seen: int = 0  # bytes predicted in optimizer steps, over every process

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        """The fields found in `data` (other keys ignored); states written before a field existed
        resume with its default (e.g. 0 s elapsed)."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training state file (tensors and plain containers only)."""
    path = Path(path)
    if os.path.lexists(path):
        require_regular_file(path, RunFileError)  # a FIFO named state.pt would hang the load
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about odd pickles; the error below says it all
            state = torch.load(f, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunFileError(f"{path}: no training state to resume from") from None
    except Exception as e:  # corrupt pickles raise many kinds of errors
        raise RunFileError(f"{path}: unreadable training state ({e})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise RunFileError(f"{path}: not a training state of this version")
    return state


def write_state_file(path: Path, state: dict[str, Any]) -> None:
    """torch.save `state` to `path` atomically (temporary name, then rename)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def save_state(path: Path, stage: str, state: TrainState, model: nn.Module, optimizer: torch.optim.Optimizer,
               cfg: TrainingConfig) -> None:
    """Everything needed to resume `stage`: the counters, the whole model, the optimizer, the RNG."""
    write_state_file(path, {
        "format": STATE_FORMAT, "stage": stage, **state.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(), "rng": _rng_state(), "config": cfg.to_dict()})


def resume_state(path: Path, stage: str, model: nn.Module, optimizer: torch.optim.Optimizer) -> TrainState:
    """Load `path` into `model`, `optimizer` and the RNG -> the stage's counters."""
    st = load_state(path)
    if st.get("stage") != stage:
        raise RunFileError(f"{path}: state of stage {st.get('stage')!r}, expected {stage!r}")
    try:
        model.load_state_dict(st["model"])
        optimizer.load_state_dict(st["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise RunFileError(f"{path}: does not match this model ({e})") from None
    _set_rng_state(st["rng"])
    return TrainState.from_dict(st)
