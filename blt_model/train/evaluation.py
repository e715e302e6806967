"""Evaluation: bits per byte and the other metrics, plus standard-library compressor baselines.

Metrics (all over scored byte positions; padding and BOS are never scored):
  loss            mean negative log-likelihood, nats per byte
  bits_per_byte   loss / ln 2
  accuracy        share of bytes whose most likely prediction is right
  perplexity      exp(loss)
  confidence_*    the probability the model gives its top prediction (mean / min / max)
  mean_patch_size bytes per patch (BOS patch excluded), when the model patches
"""

from __future__ import annotations

import bz2
import functools
import gzip
import lzma
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import PatchingConfig
from ..guards import is_int as _is_int
from ..ids import BOE_ID, BOS_ID, OFFSET
from ..inference.sampling import check_finite_logits
from .examples import split_batch

__all__ = [
    "MetricsAccumulator",
    "compressor_bits_per_byte",
    "compute_bits_per_byte",
    "evaluate_loader",
    "model_forward",
    "sliding_windows",
]

LN2 = math.log(2.0)


def _unwrap(model: nn.Module) -> nn.Module:
    # DistributedDataParallel / torch.compile wrappers keep the real module here
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    while hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
        model = model._orig_mod
    return model


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def model_forward(model: nn.Module, ids: torch.Tensor, patch_config: PatchingConfig | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits for a BLT (patching once, so the patch lengths can be reported) or for a plain
    byte LM such as the entropy model. Returns (logits [B, T, 260], patch_lengths or None)."""
    core = _unwrap(model)
    if hasattr(core, "patch"):
        lengths, _ = core.patch(ids, patch_config)
        return model(ids, patch_lengths=lengths), lengths
    return model(ids), None


@dataclass
class MetricsAccumulator:
    """Running sums for the metrics; `all_reduce` merges the sums of several processes."""

    nll: float = 0.0
    n: int = 0
    correct: int = 0
    conf_sum: float = 0.0
    conf_min: float = math.inf
    conf_max: float = -math.inf
    patch_bytes: int = 0
    patches: int = 0

    @torch.no_grad()
    def update(self, logits: torch.Tensor, ids: torch.Tensor, target_mask: torch.Tensor | None = None,
               patch_lengths: torch.Tensor | None = None) -> None:
        """logits [B, T, V] (logits[:, t] predicts ids[:, t + 1]); ids [B, T];
        target_mask Bool[B, T - 1] selects which targets to score (default: all non-padding)."""
        targets = ids[:, 1:]
        mask = targets != BOE_ID
        if target_mask is not None:
            mask = mask & target_mask.to(mask.device)
        check_finite_logits(logits)  # a NaN model must not report "nan bits per byte"
        logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
        tok = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        top_logp, top = logp.max(-1)
        conf = top_logp.exp()[mask]
        if conf.numel() == 0:
            return
        self.nll += float(-tok[mask].double().sum())
        self.n += int(mask.sum())
        self.correct += int((top == targets)[mask].sum())
        self.conf_sum += float(conf.double().sum())
        self.conf_min = min(self.conf_min, float(conf.min()))
        self.conf_max = max(self.conf_max, float(conf.max()))
        if patch_lengths is not None:
            self._count_patches(ids, patch_lengths, mask)

    def _count_patches(self, ids: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> None:
        # patch starts among scored byte positions (position >= 1; position 0 is the BOS patch)
        from ..patching import lengths_to_starts

        starts = lengths_to_starts(lengths.to(ids.device), ids.shape[1])[:, 1:]
        scored = mask & (ids[:, 1:] >= OFFSET)
        self.patch_bytes += int(scored.sum())
        self.patches += int((starts & scored).sum())

    def _vector(self, device: torch.device) -> torch.Tensor:
        return torch.tensor([self.nll, self.n, self.correct, self.conf_sum, self.patch_bytes, self.patches,
                             -self.conf_min, self.conf_max], dtype=torch.float64, device=device)

    def all_reduce(self, device: torch.device | None = None) -> None:
        """Merge with the other processes of a torch.distributed job (no-op otherwise)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        v = self._vector(device or torch.device("cpu"))
        sums, extremes = v[:6].clone(), v[6:].clone()
        dist.all_reduce(sums)
        dist.all_reduce(extremes, op=dist.ReduceOp.MAX)
        self.nll, n, c, self.conf_sum, pb, p = sums.tolist()
        self.n, self.correct, self.patch_bytes, self.patches = int(n), int(c), int(pb), int(p)
        self.conf_min, self.conf_max = -float(extremes[0]), float(extremes[1])

    def result(self) -> dict[str, float]:
        if self.n == 0:
            raise ValueError("no bytes were scored (is the data empty?)")
        loss = self.nll / self.n
        out = {
            "loss": loss,
            "bits_per_byte": loss / LN2,
            "accuracy": self.correct / self.n,
            "perplexity": math.exp(min(loss, 700.0)),
            "confidence_mean": self.conf_sum / self.n,
            "confidence_min": self.conf_min,
            "confidence_max": self.conf_max,
            "bytes": float(self.n),
        }
        if self.patches:
            out["mean_patch_size"] = self.patch_bytes / self.patches
        return out


@torch.no_grad()
def evaluate_loader(model: nn.Module, batches: Iterable[torch.Tensor], patch_config: PatchingConfig | None = None,
                    *, device: torch.device | str | None = None, max_batches: int | None = None,
                    autocast_dtype: torch.dtype | None = None, distributed: bool = True) -> dict[str, float]:
    """Metrics over batches of ids (Long[B, T], BOS first, BOE padding), e.g. a DataLoader over an
    eval-mode `ByteDataset`, or fine-tuning batches Long[B, 2, T] (examples.py: only the second
    row's non-BOE targets are scored). In a torch.distributed job the sums of all processes are merged."""
    if max_batches is not None and (not _is_int(max_batches) or max_batches < 1):
        raise ValueError(f"max_batches: must be None or an integer >= 1, got {max_batches!r}")
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    acc = MetricsAccumulator()
    try:
        for i, ids in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            ids, scored = split_batch(ids.to(device))
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits, lengths = model_forward(model, ids, patch_config)
            acc.update(logits, ids, target_mask=scored[:, 1:] != BOE_ID, patch_lengths=lengths)
    finally:
        model.train(was_training)
    if distributed:
        acc.all_reduce(device if device.type == "cuda" else None)
    return acc.result()


def sliding_windows(data: bytes, window: int, stride: int | None = None) -> list[tuple[list[int], int]]:
    """Cut `data` into windows of at most `window` ids, each BOS + context + new bytes.

    Returns (ids, n_new) pairs: only the last n_new bytes of each window are scored. Every byte
    is scored exactly once; each window after the first carries `window - 1 - stride` bytes of
    preceding context (all of it, for the first ones), so every scored byte sees at least that
    much history. stride defaults to half the window.
    """
    if not _is_int(window) or window < 2:
        raise ValueError(f"window: must be an integer >= 2 ids, got {window!r}")
    span = window - 1
    stride = max(1, span // 2) if stride is None else stride
    if not _is_int(stride) or not 1 <= stride <= span:
        raise ValueError(f"stride: must be an integer in [1, {span}], got {stride!r}")
    out: list[tuple[list[int], int]] = []
    pos = 0
    while pos < len(data):
        new = span if pos == 0 else min(stride, len(data) - pos)
        new = min(new, len(data) - pos)
        ctx = min(pos, span - new)
        chunk = data[pos - ctx:pos + new]
        out.append(([BOS_ID] + [b + OFFSET for b in chunk], new))
        pos += new
    return out


@torch.no_grad()
def compute_bits_per_byte(model: nn.Module, data: bytes | str | torch.utils.data.Dataset,
                          patch_config: PatchingConfig | None = None, *, batch_size: int = 4,
                          window: int | None = None, stride: int | None = None,
                          device: torch.device | str | None = None) -> dict[str, float]:
    """Score `data` and return the metrics dict (`bits_per_byte`, `loss`, `accuracy`, ...).

    bytes/str: scored in overlapping windows of `window` ids (default: the model's
    `max_position_embeddings`), each starting with BOS, every byte scored once with as much
    preceding context as the window allows (see `sliding_windows`).
    ByteDataset (or any dataset of 1-D id tensors): its items are scored as they are.
    """
    from .data import collate_batch

    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size: must be an integer >= 1, got {batch_size!r}")
    if window is not None and (not _is_int(window) or window < 2):
        raise ValueError(f"window: must be an integer >= 2 ids, got {window!r}")
    device = torch.device(device) if device is not None else _model_device(model)
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        if not data:
            raise ValueError("compute_bits_per_byte: no bytes to score")
        core = _unwrap(model)
        limit = getattr(getattr(core, "config", None), "max_position_embeddings", 2048)
        window = min(window or limit, limit)
        pieces = sliding_windows(data, window, stride)
        acc = MetricsAccumulator()
        was_training = model.training
        model.eval()
        try:
            # longest first keeps padding low inside each batch
            pieces.sort(key=lambda p: -len(p[0]))
            for s in range(0, len(pieces), batch_size):
                chunk = pieces[s:s + batch_size]
                ids = collate_batch([torch.tensor(p[0], dtype=torch.long) for p in chunk]).to(device)
                mask = torch.zeros(ids.shape[0], ids.shape[1] - 1, dtype=torch.bool, device=device)
                for row, (p, new) in enumerate(chunk):
                    end = len(p) - 1  # targets are ids[1:], so target index = position - 1
                    mask[row, end - new:end] = True
                logits, lengths = model_forward(model, ids, patch_config)
                acc.update(logits, ids, target_mask=mask, patch_lengths=lengths)
        finally:
            model.train(was_training)
        return acc.result()
    if len(data) == 0:
        raise ValueError("compute_bits_per_byte: the dataset is empty")
    batches = (collate_batch([data[j] for j in range(s, min(s + batch_size, len(data)))])
               for s in range(0, len(data), batch_size))
    return evaluate_loader(model, batches, patch_config, device=device, distributed=False)


_COMPRESSORS = {
    "gzip": lambda b: gzip.compress(b, compresslevel=9, mtime=0),
    "bz2": lambda b: bz2.compress(b, compresslevel=9),
    "lzma": lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME),
}


def compressor_bits_per_byte(data: bytes, reference: bytes | None = None) -> dict[str, float]:
    """Bits per byte that gzip, bz2 and lzma (highest levels) need for `data`.

    With `reference` (e.g. the training split), the cost is that of `data` given the reference:
    size(reference + data) - size(reference), the fair comparison for a model trained on it.
    """
    if not data:
        raise ValueError("no bytes to compress")
    out = {}
    base = _compressed_sizes(bytes(reference)) if reference else None
    for name, fn in _COMPRESSORS.items():
        size = len(fn(reference + data)) - base[name] if base else len(fn(data))
        out[name] = 8.0 * size / len(data)
    return out


@functools.lru_cache(maxsize=2)
def _compressed_sizes(reference: bytes) -> dict[str, int]:
    """Compressed sizes of a reference, kept: scoring several files against one training text
    (`blt eval --reference`, the model card) compresses it once, not once per file (xz -9e of
    22 MB takes minutes)."""
    return {name: len(fn(reference)) for name, fn in _COMPRESSORS.items()}
