"""Training: the entropy model, then the BLT with patches from the frozen entropy model.

`train(...)` runs both stages from plain files; `train_model` / `train_entropy_model` are the
loops for callers that bring their own DataLoaders.

A run directory holds, per stage (the entropy stage lives in `DIR/entropy/`):
  best/        the model with the lowest validation loss (load with `load_model`)
  last/        the latest model
  state.pt     everything needed to resume (weights, optimizer, step, elapsed training time, RNG, data
               position), a torch.save of tensors and plain containers (loads with weights_only)
  metrics.jsonl one JSON object per log line / evaluation
Every file is written to a temporary name and renamed, so a kill at any moment leaves the
previous version readable.

Multi-process: run the same command under `torchrun --nproc-per-node N`; the process group
is set up from the environment (gloo on CPU, NCCL on CUDA) and only rank 0 writes or prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from ..cli.report import TrainingProgress
from ..config import BLTConfig
from ..guards import (
    check_memory,
    format_bytes,
    is_int,
    is_number,
    markup_safe,
    read_regular_file,
    require_regular_file,
)
from ..ids import BOE_ID, OFFSET
from ..inference.sampling import NonFiniteLogitsError
from ..io.checkpoint import (
    atomic_write_bytes,
    atomic_write_text,
    fault_point,
    load_model,
    meta_model,
    prepare_output_dir,
    remove_temp_files,
    save_model,
)
from ..nn.model import BLT, lm_loss
from ..patching import calibrate_threshold
from .data import (
    BucketBatchSampler,
    ByteDataset,
    DataError,
    DataStats,
    collate_batch,
    read_documents,
    split_documents,
)
from .evaluation import evaluate_loader

__all__ = [
    "TrainingConfig",
    "RunFileError",
    "TrainingError",
    "TrainingInterrupted",
    "TrainResult",
    "calibrate_entropy_threshold",
    "make_loader",
    "setup_distributed",
    "train",
    "train_entropy_model",
    "train_model",
    "world_info",
]

STATE_NAME = "state.pt"
METRICS_NAME = "metrics.jsonl"
STATE_FORMAT = 1
_MAX_RUN_FILE = 4 << 20  # run.json / done.json hold a config: a few KB


class TrainingError(RuntimeError):
    """Training cannot continue (non-finite losses, out of memory at batch 1, bad resume state)."""


class RunFileError(TrainingError, ValueError):
    """A run directory's files are missing, unreadable or from another run (bad input)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl+C during training, after `last/` and the resume state were saved in `run_dir`."""

    def __init__(self, run_dir: Path | None) -> None:
        super().__init__(str(run_dir) if run_dir else "")
        self.run_dir = run_dir


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
    progress: bool = True
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


def _as_config(config: TrainingConfig | dict[str, Any] | None) -> TrainingConfig:
    if config is None:
        return TrainingConfig()
    if isinstance(config, TrainingConfig):
        return config
    return TrainingConfig.from_dict(dict(config))


# --- distributed helpers ---------------------------------------------------------------------

def world_info() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str | torch.device | None = None) -> torch.device:
    """Join the torchrun process group if launched by torchrun (WORLD_SIZE > 1); pick the device.

    gloo on CPU, NCCL on CUDA. With one process nothing is initialised.
    """
    want = torch.device(device) if device is not None else None
    use_cuda = (want.type == "cuda") if want is not None else torch.cuda.is_available()
    if want is not None and want.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        index = local_rank if world > 1 else (want.index if want is not None and want.index is not None else 0)
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return want if want is not None else torch.device("cpu")


def _all_reduce(t: torch.Tensor, op: Any = None) -> torch.Tensor:
    if world_info()[1] > 1:
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t


# --- loaders -----------------------------------------------------------------------------------

def make_loader(dataset: ByteDataset, batch_size: int, *, train: bool, seed: int = 0,
                rank: int | None = None, world_size: int | None = None) -> DataLoader:
    """A DataLoader with deterministic, resumable, per-process batches (see `BucketBatchSampler`)."""
    r, w = world_info()
    rank = r if rank is None else rank
    world_size = w if world_size is None else world_size
    lengths = [dataset.item_length(i) for i in range(len(dataset))]
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=train, seed=seed, rank=rank,
                                 world_size=world_size, bucket=train, drop_last=train)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_batch)


def _set_epoch(loader: Iterable, epoch: int) -> None:
    for obj in (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None),
                getattr(loader, "dataset", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


def _iter_from(loader: Iterable, skip: int) -> Iterable[torch.Tensor]:
    bs = getattr(loader, "batch_sampler", None)
    if skip and isinstance(bs, BucketBatchSampler):
        bs.skip = skip  # skip without building the batches
        return iter(loader)
    it = iter(loader)
    for _ in range(skip):
        next(it, None)
    return it


# --- the loop ----------------------------------------------------------------------------------

def lr_factor(step: int, warmup: int, horizon: int | None, min_ratio: float,
              time_fraction: float | None = None) -> float:
    """Learning-rate multiplier: linear warmup, then cosine decay to `min_ratio`.

    Progress through the decay is the larger of the step progress (`step / horizon`) and
    `time_fraction` (elapsed / budget when the run has a wall-clock budget), so `--max-minutes`
    alone decays over the time budget and a run with both budgets decays by the one that ends first.
    """
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = 0.0
    if horizon is not None:
        progress = (step - warmup) / max(1, horizon - warmup)
    if time_fraction is not None:
        progress = max(progress, time_fraction)
    progress = min(1.0, max(0.0, progress))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # no weight decay on norms, biases and gains (1-D tensors)
    decay = [p for p in module.parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for p in module.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


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


def _save_state(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


@contextlib.contextmanager
def _save_on_interrupt(run_dir: Path | None, main: bool, save: Callable[[str], None],
                       save_state: Callable[[], None]) -> Any:
    """Ctrl+C: save last/ and the resume state, then raise TrainingInterrupted. A second Ctrl+C
    during that save still leaves the previous files whole (every write is atomic)."""
    try:
        yield
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        if run_dir is None or not main:
            raise
        save("last")
        save_state()
        raise TrainingInterrupted(run_dir) from None


class _MetricsLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")


@dataclass
class _Stage:
    name: str
    target: nn.Module  # what is optimized and forwarded
    owner: BLT  # what is saved (the whole model)


def _fit(stage: _Stage, train_loader: Iterable, val_loader: Iterable | None, cfg: TrainingConfig,
         num_epochs: int, out_dir: str | os.PathLike | None, resume: bool,
         on_step: Callable[[int, float], bool | None] | None, console: Any = None) -> float:
    rank, world = world_info()
    main = rank == 0
    target, owner = stage.target, stage.owner
    device = next(target.parameters()).device
    run_dir = Path(out_dir) if out_dir is not None else None
    log = _MetricsLog(run_dir / METRICS_NAME if (run_dir and main) else None)
    params = [p for p in target.parameters() if p.requires_grad]
    if not params:
        raise TrainingError(f"{stage.name}: the model has no trainable parameters")
    accum = cfg.gradient_accumulation_steps
    try:
        per_epoch = math.ceil(len(train_loader) / accum)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    if per_epoch == 0:
        raise DataError("the training data yields no batches")
    # steps over which the cosine decays; None: a wall-clock budget alone, the decay follows the clock
    horizon: int | None
    if cfg.schedule_steps:
        horizon = cfg.schedule_steps
    elif cfg.max_steps:
        horizon = min(cfg.max_steps, per_epoch * num_epochs) if per_epoch else cfg.max_steps
    elif cfg.max_minutes:
        horizon = None
    else:
        horizon = per_epoch * num_epochs if per_epoch else 10_000
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else None
    opt_kwargs: dict[str, Any] = {"lr": cfg.learning_rate, "betas": cfg.betas, "eps": 1e-8}
    optimizer = torch.optim.AdamW(_param_groups(target, cfg.weight_decay), **opt_kwargs)

    s = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_val_loss": math.inf, "bad_evals": 0,
         "nonfinite_steps": 0, "consecutive_nonfinite": 0, "micro_batch_size": 0,
         "elapsed_s": 0.0}  # training seconds over every invocation: the time budget spans resumes
    state_path = run_dir / STATE_NAME if run_dir else None
    best_weights: dict[str, torch.Tensor] | None = None
    if resume and state_path is not None and state_path.exists():
        st = load_state(state_path)
        if st.get("stage") != stage.name:
            raise RunFileError(f"{state_path}: state of stage {st.get('stage')!r}, expected {stage.name!r}")
        try:
            owner.load_state_dict(st["model"])
            optimizer.load_state_dict(st["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise RunFileError(f"{state_path}: does not match this model ({e})") from None
        for k in s:
            s[k] = st.get(k, s[k])  # states written before "elapsed_s" existed resume at 0 s
        _set_rng_state(st["rng"])

    model: nn.Module = target
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(target, device_ids=[device.index] if device.type == "cuda" else None,
                    find_unused_parameters=cfg.ddp_find_unused_parameters)
    forward = model
    if cfg.compile and device.type == "cuda":
        forward = torch.compile(model)
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"
                                           and torch.cuda.is_bf16_supported())
    amp_dtype = torch.bfloat16 if use_bf16 else None
    micro_bs = s["micro_batch_size"] or 0  # 0 = whole loader batches

    t_start = time.perf_counter()
    elapsed_before = float(s["elapsed_s"])
    deadline = t_start + budget_s - elapsed_before if budget_s else None

    def count_elapsed() -> None:
        s["elapsed_s"] = elapsed_before + (time.perf_counter() - t_start)

    def set_lr() -> float:
        count_elapsed()
        frac = s["elapsed_s"] / budget_s if budget_s else None
        f = lr_factor(s["step"], cfg.warmup_steps, horizon, cfg.min_lr_ratio, frac)
        for g in optimizer.param_groups:
            g["lr"] = cfg.learning_rate * f
        return cfg.learning_rate * f
    progress_total = cfg.max_steps or (per_epoch * num_epochs if per_epoch else None)
    progress = TrainingProgress(progress_total, stage.name, enabled=main and cfg.progress, console=console,
                                start_step=s["step"])

    def save(kind: str) -> None:
        if run_dir is None or not main:
            return
        save_model(owner, run_dir / kind)

    def save_state() -> None:
        if state_path is None or not main:
            return
        count_elapsed()
        st = {"format": STATE_FORMAT, "stage": stage.name, **s,
              "model": {k: v.detach().cpu() for k, v in owner.state_dict().items()},
              "optimizer": optimizer.state_dict(),
              "rng": _rng_state(), "config": cfg.to_dict()}
        _save_state(state_path, st)

    def evaluate() -> float | None:
        nonlocal best_weights
        if val_loader is None:
            return None
        try:
            metrics = evaluate_loader(target, val_loader, device=device, max_batches=cfg.eval_max_batches,
                                      autocast_dtype=amp_dtype)
        except NonFiniteLogitsError as e:
            where = f"; the last good checkpoint is in {run_dir}" if run_dir else ""
            raise TrainingError(f"{stage.name}: validation at step {s['step']}: {e}{where}") from None
        loss = metrics["loss"]
        log.write({"stage": stage.name, "step": s["step"], "eval": metrics})
        progress.metrics_table(metrics, f"{stage.name}: validation at step {s['step']}")
        if loss < s["best_val_loss"] - 1e-9:
            s["best_val_loss"] = loss
            s["bad_evals"] = 0
            best_weights = {k: v.detach().to("cpu", copy=True) for k, v in owner.state_dict().items()}
            save("best")
        else:
            s["bad_evals"] += 1
        return loss

    def optimizer_step(batches: list[torch.Tensor]) -> tuple[float, int]:
        nonlocal micro_bs
        n_local = sum(int((b[:, 1:] != BOE_ID).sum()) for b in batches)
        n_global = int(_all_reduce(torch.tensor([n_local], dtype=torch.float64, device=device))[0])
        if n_global == 0:
            return math.nan, 0
        while True:
            optimizer.zero_grad(set_to_none=True)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            try:
                chunks = [c for b in batches for c in (b.split(micro_bs) if micro_bs else [b])]
                for j, chunk in enumerate(chunks):
                    chunk = chunk.to(device, non_blocking=True)
                    last = j == len(chunks) - 1
                    sync = contextlib.nullcontext() if (last or world == 1) else model.no_sync()
                    with sync:
                        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                            logits = forward(chunk)
                        part, _ = lm_loss(logits, chunk, reduction="sum")
                        # DDP averages gradients over ranks; scaling by world / n_global makes the
                        # result the gradient of the mean loss over every target of the global batch
                        (part * (world / n_global)).backward()
                    loss_sum += part.detach().double()
                break
            except torch.cuda.OutOfMemoryError:
                biggest = max(b.shape[0] for b in batches)
                current = micro_bs or biggest
                if world > 1 or current <= 1:
                    raise TrainingError(
                        "CUDA out of memory" + (" at micro-batch 1" if current <= 1 else " in a multi-process run")
                        + f"; lower --batch-size or --seq-len (now {cfg.batch_size} x {cfg.max_sequence_length})"
                    ) from None
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                micro_bs = max(1, current // 2)
                s["micro_batch_size"] = micro_bs
                progress.print(f"[yellow]CUDA out of memory: micro-batch halved to {micro_bs} "
                               f"(gradient accumulation keeps the effective batch)")
        total = _all_reduce(loss_sum)
        return float(total) / n_global, n_global

    stop_reason = "epochs"
    last_eval_step = -1
    with progress, _save_on_interrupt(run_dir, main, save, save_state):
        while s["epoch"] < num_epochs:
            _set_epoch(train_loader, s["epoch"])
            it = iter(_iter_from(train_loader, s["batch_in_epoch"]))
            exhausted = False
            while not exhausted:
                batches = []
                for _ in range(accum):
                    b = next(it, None)
                    if b is None:
                        exhausted = True
                        break
                    batches.append(b)
                if not batches:
                    break
                s["batch_in_epoch"] += len(batches)
                loss, n_bytes = optimizer_step(batches)
                if n_bytes == 0:
                    continue
                total_norm = (torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm > 0
                              else torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params if p.grad is not None)))
                if not (math.isfinite(loss) and math.isfinite(float(total_norm))):
                    # skip: no update, keep counting; too many in a row is a broken run
                    optimizer.zero_grad(set_to_none=True)
                    s["nonfinite_steps"] += 1
                    s["consecutive_nonfinite"] += 1
                    log.write({"stage": stage.name, "step": s["step"], "skipped": "non-finite loss or gradient"})
                    if s["consecutive_nonfinite"] >= cfg.max_nonfinite_steps:
                        where = f"; the last good checkpoint is in {run_dir}" if run_dir else ""
                        raise TrainingError(
                            f"{stage.name}: {s['consecutive_nonfinite']} steps in a row had a non-finite loss "
                            f"or gradient (step {s['step']}); try a lower learning rate{where}")
                    continue
                s["consecutive_nonfinite"] = 0
                lr = set_lr()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                s["step"] += 1
                progress.update(s["step"], loss=loss, n_bytes=n_bytes, lr=lr)
                if s["step"] % cfg.log_interval == 0 or s["step"] == 1:
                    log.write({"stage": stage.name, "step": s["step"], "epoch": s["epoch"], "loss": loss,
                               "bits_per_byte": loss / math.log(2), "lr": lr, "bytes": n_bytes,
                               "elapsed_s": round(time.perf_counter() - t_start, 3)})
                want_stop = bool(on_step(s["step"], loss)) if on_step is not None else False
                if s["step"] % cfg.eval_interval == 0:
                    evaluate()
                    last_eval_step = s["step"]
                    save("last")
                    fault_point("between_weights_and_state")
                    save_state()
                    if cfg.patience and s["bad_evals"] >= cfg.patience:
                        stop_reason = "early_stop"
                        break
                if want_stop:
                    stop_reason = "callback"
                    break
                if cfg.max_steps is not None and s["step"] >= cfg.max_steps:
                    stop_reason = "max_steps"
                    break
                if deadline is not None:
                    # every rank must stop at the same step: rank 0's clock decides
                    late = torch.tensor([float(time.perf_counter() >= deadline)], device=device)
                    if world > 1:
                        dist.broadcast(late, 0)
                    if late.item():
                        stop_reason = "max_minutes"
                        break
            if stop_reason != "epochs":
                break
            s["epoch"] += 1
            s["batch_in_epoch"] = 0
        if last_eval_step != s["step"]:
            evaluate()
        save("last")
        fault_point("between_weights_and_state")
        save_state()
        if val_loader is None:
            save("best")
    if best_weights is not None:
        target_state = owner.state_dict()
        # the returned model is the best one seen (early stopping semantics)
        owner.load_state_dict({k: best_weights[k].to(target_state[k].device) for k in target_state})
    progress.print(f"[bold]{stage.name}[/]: stopped ({stop_reason}) at step {s['step']}; "
                   f"best validation loss {s['best_val_loss']:.4f} nats/byte"
                   + (f" ({s['best_val_loss'] / math.log(2):.4f} bits/byte)" if math.isfinite(s['best_val_loss']) else "")
                   + (f"; {s['nonfinite_steps']} non-finite steps skipped" if s["nonfinite_steps"] else ""))
    return s["best_val_loss"]


def train_model(model: BLT, train_loader: Iterable, val_loader: Iterable | None,
                config: TrainingConfig | dict[str, Any] | None = None, num_epochs: int | None = None, *,
                out_dir: str | os.PathLike | None = None, resume: bool = False,
                on_step: Callable[[int, float], bool | None] | None = None, console: Any = None
                ) -> tuple[BLT, float]:
    """Train the BLT (its entropy model frozen) -> (model holding the best weights, best val loss).

    `on_step(step, loss)` is called after every optimizer step; returning True stops the run
    (state saved, resumable). With `out_dir`, best/, last/, state.pt and metrics.jsonl go there;
    `resume=True` continues from `out_dir/state.pt` when it exists.
    """
    cfg = _as_config(config)
    model.freeze_entropy_model(True)
    model.train()
    best = _fit(_Stage("blt", model, model), train_loader, val_loader, cfg, num_epochs or cfg.num_epochs,
                out_dir, resume, on_step, console)
    return model, best


def train_entropy_model(model: BLT, train_loader: Iterable, val_loader: Iterable | None,
                        config: TrainingConfig | dict[str, Any] | None = None, num_epochs: int | None = None, *,
                        out_dir: str | os.PathLike | None = None, resume: bool = False,
                        on_step: Callable[[int, float], bool | None] | None = None, console: Any = None
                        ) -> tuple[BLT, float]:
    """Stage 1: train `model.entropy_model` as a causal byte LM (the rest of the model is not
    touched). Saves the whole model, so `DIR/best/` loads with `load_model`."""
    cfg = _as_config(config)
    model.freeze_entropy_model(False)
    model.entropy_model.train()
    best = _fit(_Stage("entropy", model.entropy_model, model), train_loader, val_loader, cfg,
                num_epochs or cfg.num_epochs, out_dir, resume, on_step, console)
    return model, best


@torch.no_grad()
def calibrate_entropy_threshold(model: BLT, batches: Iterable[torch.Tensor], target_mean_patch_size: float,
                                max_batches: int = 16) -> float:
    """Pick the entropy threshold giving `target_mean_patch_size` bytes per patch on `batches`,
    store it in `model.config` as its calibrated patching threshold and return it."""
    device = next(model.parameters()).device
    was = model.entropy_model.training
    model.entropy_model.eval()
    collected = []
    reset = model.config.patching.reset_context
    for i, ids in enumerate(batches):
        if i >= max_batches:
            break
        ids = ids.to(device)
        h = model.entropy_model.entropies(ids, reset_context=reset).float()
        # H[:, t] decides whether t + 1 starts a patch: keep it only where t + 1 is a real byte
        valid = torch.zeros_like(h, dtype=torch.bool)
        valid[:, :-1] = ids[:, 1:] >= OFFSET
        collected.append(h[valid].cpu())
    model.entropy_model.train(was)
    if not collected or sum(c.numel() for c in collected) == 0:
        raise DataError("no data to calibrate the entropy threshold on")
    theta = float(calibrate_threshold(torch.cat(collected), target_mean_patch_size))
    if world_info()[1] > 1:  # identical in theory; make it identical in fact
        t = torch.tensor([theta], dtype=torch.float64, device=device)
        dist.broadcast(t, 0)
        theta = float(t)
    model.config.set_calibrated_threshold(theta)
    return theta


@dataclass
class TrainResult:
    model: BLT
    best_val_loss: float
    out_dir: Path
    entropy_threshold: float | None
    entropy_best_val_loss: float | None
    train_stats: DataStats
    valid_stats: DataStats | None
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. small data, old run moved aside


def _console(cfg: TrainingConfig, console: Any) -> Any:
    if console is not None:
        return console
    from rich.console import Console

    return Console(stderr=True, quiet=not cfg.progress)


def _stage_budget(cfg: TrainingConfig) -> TrainingConfig:
    steps = cfg.entropy_max_steps or (max(1, cfg.max_steps // 4) if cfg.max_steps else None)
    minutes = cfg.entropy_max_minutes or (cfg.max_minutes / 4 if cfg.max_minutes else None)
    changes: dict[str, Any] = {"max_steps": steps, "max_minutes": minutes, "schedule_steps": None}
    if cfg.entropy_learning_rate is not None:
        changes["learning_rate"] = cfg.entropy_learning_rate
    return cfg.replace(**changes)


def train(
    data: str | os.PathLike | Sequence[str | os.PathLike],
    valid: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    out_dir: str | os.PathLike,
    model_config: BLTConfig | None = None,
    training: TrainingConfig | dict[str, Any] | None = None,
    entropy_model: str | os.PathLike | BLT | None = None,
    device: str | torch.device | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_step: Callable[[int, float], bool | None] | None = None,
    console: Any = None,
) -> TrainResult:
    """From plain files to a trained BLT in `out_dir/best/`.

    1. Read `data` (files, directories, globs, .jsonl, hf:NAME) and `valid` (or hold out the tail
       of every training document); every source is checked before training starts.
    2. Train the entropy model (unless `entropy_model`, a model directory or BLT, is given) and
       calibrate the entropy threshold to `model_config.target_mean_patch_size`.
    3. Train the BLT with patches from the frozen entropy model.
    `resume=True` continues an interrupted run in `out_dir` (its stored model config is used).
    An `out_dir` that already holds a model or a run is refused unless `resume` or `overwrite`
    (which moves it aside to `NAME.old-TIMESTAMP`, never deleting it). Temporary files left by
    killed saves are removed when the run starts or resumes.
    """
    cfg = _as_config(training)
    out = Path(out_dir)
    dev = setup_distributed(device)
    rank, world = world_info()
    main = rank == 0
    console = _console(cfg, console) if main else _console(cfg.replace(progress=False), None)
    notes: list[str] = []
    moved = prepare_output_dir(out, resume=resume, overwrite=overwrite, move=main)
    if world > 1:
        dist.barrier()  # the other ranks start once rank 0 has moved the old run aside
    if moved is not None:
        notes.append(f"the previous contents of {out} were moved to {moved}")
    if main:
        n, size = remove_temp_files(out)
        if n:
            notes.append(f"removed {n} temporary file(s) ({format_bytes(size)}) left by interrupted saves")
    for note in notes:
        console.print(markup_safe(note))

    # --- configuration (a resumed run keeps its own) ---
    run_file = out / "run.json"
    if resume:
        if not run_file.exists():
            raise RunFileError(f"{out}: nothing to resume (no run.json; start without --resume)")
        try:
            stored = json.loads(read_regular_file(run_file, _MAX_RUN_FILE).decode("utf-8"))
            stored_cfg = BLTConfig.from_dict(stored["model"])
        except (OSError, KeyError, ValueError, TypeError, RecursionError) as e:
            raise RunFileError(f"{run_file}: unreadable run description ({e})") from None
        # the stored config holds the calibrated threshold; compare everything else
        if model_config is not None and model_config.without_calibration() != stored_cfg.without_calibration():
            raise ValueError(f"{out}: the run was started with a different model config; "
                             "resume without --preset/--config or use a new --out")
        model_config = stored_cfg
    model_config = model_config or BLTConfig.preset("tiny")
    if cfg.max_sequence_length > model_config.max_position_embeddings:
        raise ValueError(f"max_sequence_length {cfg.max_sequence_length} exceeds the model's "
                         f"max_position_embeddings {model_config.max_position_embeddings}")

    # --- data: read and check everything before any training ---
    docs, train_stats = read_documents(data, min_length=1, allow_binary=cfg.allow_binary)
    valid_stats = None
    if valid:
        valid_docs, valid_stats = read_documents(valid, min_length=1, allow_binary=cfg.allow_binary)
    else:
        docs, valid_docs = split_documents(docs, cfg.valid_fraction)
    train_ds = ByteDataset(docs, cfg.max_sequence_length, cfg.min_text_length, mode="train", seed=cfg.seed)
    if len(train_ds) == 0:
        raise DataError(f"no training document has at least min_text_length={cfg.min_text_length} bytes "
                        f"({train_ds.stats.summary()})")
    cfg, train_ds, small = _fit_to_small_data(docs, train_ds, cfg)
    if small:
        notes.append(small)
        if main:
            console.print(f"[yellow]{markup_safe(small)}[/]")
    valid_ds = ByteDataset(valid_docs, cfg.max_sequence_length, 1, mode="eval")
    if main:
        console.print(f"[bold]train[/]: {train_stats.summary()}"
                      + (f"; {train_ds.stats.skipped_short} shorter than {cfg.min_text_length} bytes skipped"
                         if train_ds.stats.skipped_short else ""))
        console.print(f"[bold]valid[/]: {valid_stats.summary() if valid_stats else 'held out'}; "
                      f"{valid_ds.num_bytes:,} bytes")
        for p in (train_stats.skipped_paths + (valid_stats.skipped_paths if valid_stats else []))[:10]:
            console.print(f"[yellow]skipped[/] {markup_safe(p)}")
    train_loader = make_loader(train_ds, cfg.batch_size, train=True, seed=cfg.seed)
    valid_loader = make_loader(valid_ds, cfg.eval_batch_size, train=False)

    # weights, gradients and AdamW's two moments: refuse a config that cannot fit before building it
    if dev.type == "cpu":  # (a GPU's memory is its own; CUDA reports running out itself)
        count = meta_model(model_config).num_parameters()
        check_memory(16 * count, f"the model config ({count:,} parameters; weights, gradients and optimizer state)")
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = BLT(model_config).to(dev)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            atomic_write_text(run_file, json.dumps({"model": model_config.to_dict(), "training": cfg.to_dict()},
                                                   indent=2) + "\n")

    # --- stage 1: entropy model ---
    entropy_dir = out / "entropy"
    done_file = entropy_dir / "done.json"
    entropy_best: float | None = None
    if not model_config.patching.needs_entropies and entropy_model is None:
        pass  # fixed / space patching: no entropy model needed
    elif entropy_model is not None:
        src = entropy_model if isinstance(entropy_model, BLT) else load_model(entropy_model)
        try:
            model.entropy_model.load_state_dict(src.entropy_model.state_dict())
        except RuntimeError as e:
            raise ValueError(f"the given entropy model does not fit this model config ({e})") from None
    elif resume and done_file.exists():
        try:
            done = json.loads(read_regular_file(done_file, _MAX_RUN_FILE).decode("utf-8"))
            if not isinstance(done, dict):
                raise TypeError("not a JSON object")
        except (ValueError, TypeError, RecursionError) as e:
            raise RunFileError(f"{done_file}: unreadable ({e})") from None
        model.entropy_model.load_state_dict(load_model(entropy_dir / "best").entropy_model.state_dict())
        entropy_best = done.get("best_val_loss")
    else:
        stage_cfg = _stage_budget(cfg)
        _, entropy_best = train_entropy_model(model, train_loader, valid_loader, stage_cfg, out_dir=entropy_dir,
                                              resume=resume, on_step=None, console=console)
        if main:
            atomic_write_text(done_file, json.dumps({"best_val_loss": entropy_best}) + "\n")
        if world > 1:
            dist.barrier()

    threshold = None
    if model_config.patching.needs_entropies:
        if resume and model_config.entropy_threshold_calibrated:
            threshold = model_config.patching.entropy_threshold
        else:
            calib = ByteDataset(docs, cfg.max_sequence_length, 1, mode="eval")
            threshold = calibrate_entropy_threshold(
                model, make_loader(calib, cfg.eval_batch_size, train=False, rank=0, world_size=1),
                model_config.target_mean_patch_size, cfg.calibration_batches)
            if main:
                console.print(f"entropy threshold {threshold:.4f} nats for a target mean patch size of "
                              f"{model_config.target_mean_patch_size}")
                # a resumed run must reuse this threshold, not recalibrate on a changed model
                atomic_write_text(run_file, json.dumps({"model": model.config.to_dict(),
                                                        "training": cfg.to_dict()}, indent=2) + "\n")

    # --- stage 2: the BLT ---
    model, best = train_model(model, train_loader, valid_loader, cfg, cfg.num_epochs, out_dir=out,
                              resume=resume, on_step=on_step, console=console)
    return TrainResult(model, best, out, threshold, entropy_best, train_stats, valid_stats, notes)


_MIN_SMALL_WINDOW = 32  # bytes per window below which a byte model learns little


def _fit_to_small_data(docs: list[bytes], train_ds: ByteDataset, cfg: TrainingConfig
                       ) -> tuple[TrainingConfig, ByteDataset, str | None]:
    """Data too small for one batch of full windows (a user's first try on a small file):
    shorter windows, then smaller batches, until an epoch has a batch -> (cfg, dataset, note)."""
    def batches(ds: ByteDataset, bs: int) -> int:
        return len(make_loader(ds, bs, train=True, seed=cfg.seed))

    if batches(train_ds, cfg.batch_size):
        return cfg, train_ds, None
    n_bytes = train_ds.num_bytes
    seq = max(_MIN_SMALL_WINDOW + 1, min(cfg.max_sequence_length, n_bytes // cfg.batch_size + 1))
    seq = min(seq, cfg.max_sequence_length)
    ds = ByteDataset(docs, seq, cfg.min_text_length, mode="train", seed=cfg.seed)
    bs = cfg.batch_size
    while bs > 1 and not batches(ds, bs):
        bs = max(1, min(bs - 1, len(ds)))
    if not batches(ds, bs):
        raise DataError(f"the training data yields no batches ({train_ds.stats.summary()})")
    note = (f"small data: only {n_bytes:,} training bytes, so windows of {seq - 1} bytes (asked "
            f"{cfg.max_sequence_length - 1}) and batches of {bs} (asked {cfg.batch_size}), "
            f"{batches(ds, bs)} batch(es) per epoch; more text gives a better model")
    return cfg.replace(max_sequence_length=seq, batch_size=bs), ds, note
