"""`TrainingConfig`: the hyper-parameters and budgets of a run (JSON-able, validated)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..guards import is_int, is_number

__all__ = ["TrainingConfig", "as_config"]


@dataclass
class TrainingConfig:
    """Training hyper-parameters. The first block are the design notes' keys."""

    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    max_sequence_length: int = 512
    batch_size: int = 16
    eval_batch_size: int = 16
    patience: int = 5  # evaluations without improvement before stopping; 0 = never stop early
    num_epochs: int = 1
    min_text_length: int = 1
    # budgets: optimizer steps and wall-clock minutes, both counted over the whole run (a resumed
    # run continues the count and the learning-rate decay); None = unlimited
    max_steps: int | None = None
    max_minutes: float | None = None
    # horizon of the cosine decay; default max_steps, else num_epochs * steps per epoch
    schedule_steps: int | None = None
    min_lr_ratio: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eval_interval: int = 200
    eval_max_batches: int | None = 50
    log_interval: int = 10
    seed: int = 0
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA when supported), "bf16", "fp32"
    compile: bool = False  # torch.compile the training forward (CUDA only)
    max_nonfinite_steps: int = 5  # consecutive skipped steps before the run stops
    ddp_find_unused_parameters: bool = False
    progress: bool = True  # show progress (the `blt train` command then passes a reporter)
    # stage 1 (entropy model) budgets; None = a quarter of the BLT's budget
    entropy_max_steps: int | None = None
    entropy_max_minutes: float | None = None
    entropy_learning_rate: float | None = None
    calibration_batches: int = 16
    valid_fraction: float = 0.05  # held out from each document when no validation data is given
    allow_binary: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.betas, list):
            self.betas = tuple(self.betas)

        def need(ok: bool, name: str, want: str) -> None:
            if not ok:
                raise ValueError(f"{name}: must be {want}, got {getattr(self, name)!r}")

        for name in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "num_epochs",
                     "max_sequence_length", "min_text_length", "eval_interval", "log_interval",
                     "max_nonfinite_steps", "calibration_batches"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "an integer >= 1")
        need(self.max_sequence_length >= 2, "max_sequence_length", ">= 2 (BOS + one byte)")
        for name in ("warmup_steps", "patience"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 0, name, "an integer >= 0")
        for name in ("max_steps", "schedule_steps", "entropy_max_steps", "eval_max_batches"):
            v = getattr(self, name)
            need(v is None or (is_int(v) and v >= 1), name, "None or an integer >= 1")
        for name in ("max_minutes", "entropy_max_minutes"):
            v = getattr(self, name)
            need(v is None or (is_number(v) and v > 0), name, "None or a finite number > 0")
        for name in ("learning_rate", "entropy_learning_rate"):
            v = getattr(self, name)
            need((v is None and name != "learning_rate") or (is_number(v) and v > 0), name, "a finite number > 0")
        for name in ("weight_decay", "max_grad_norm"):
            need(is_number(getattr(self, name)) and getattr(self, name) >= 0, name, "a finite number >= 0")
        need(is_number(self.min_lr_ratio) and 0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "in [0, 1]")
        need(isinstance(self.betas, tuple) and len(self.betas) == 2 and all(is_number(b) and 0 <= b < 1 for b in self.betas),
             "betas", "two numbers in [0, 1)")
        need(self.precision in ("auto", "bf16", "fp32"), "precision", "'auto', 'bf16' or 'fp32'")
        need(is_number(self.valid_fraction) and 0.0 < self.valid_fraction < 1.0, "valid_fraction", "in (0, 1)")
        need(is_int(self.seed) and 0 <= self.seed < 2**64, "seed", "an integer in [0, 2**64)")
        for name in ("compile", "ddp_find_unused_parameters", "progress", "allow_binary"):
            need(isinstance(getattr(self, name), bool), name, "true or false")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"TrainingConfig: unknown field {unknown[0]!r} (known fields: {', '.join(sorted(names))})")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    def replace(self, **changes: Any) -> TrainingConfig:
        return dataclasses.replace(self, **changes)


def as_config(config: TrainingConfig | dict[str, Any] | None) -> TrainingConfig:
    """A TrainingConfig from itself, a dict of its fields, or None (the defaults)."""
    if config is None:
        return TrainingConfig()
    if isinstance(config, TrainingConfig):
        return config
    return TrainingConfig.from_dict(dict(config))
