"""Patching: where patches start (docs/architecture.md section 2). Pure functions, no model.

Convention: for ids of length T, `starts` has T + 1 columns. starts[:, s] says whether
position s starts a patch. Column 0 (BOS, patch 0) and column 1 are always True. Column T is
the decision for the next, not yet seen, position: it is needed because the decoder state at
the last position must know which patch the next byte belongs to. The decision for s uses
only ids at positions < s (the online rule).
"""

from __future__ import annotations

import numpy as np
import torch

from .config import PatchingConfig
from .ids import OFFSET


def space_like(ids: torch.Tensor) -> torch.Tensor:
    """True for ids that are ASCII bytes other than letters/digits, and for special ids.

    Bytes >= 0x80 count as word bytes so multi-byte UTF-8 characters are never split.
    """
    b = ids.long() - OFFSET
    is_byte = b >= 0
    digit = (b >= 48) & (b <= 57)
    upper = (b >= 65) & (b <= 90)
    lower = (b >= 97) & (b <= 122)
    high = b >= 128
    return ~is_byte | ~(digit | upper | lower | high)


def _space_like_id(token_id: int) -> bool:
    b = int(token_id) - OFFSET
    if b < 0:
        return True
    return not (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b >= 128)


def candidate_starts(ids: torch.Tensor, entropies: torch.Tensor | None, cfg: PatchingConfig) -> torch.Tensor:
    """Scheme decision before min/max sizes: Bool[B, T + 1] (columns 0 and 1 True)."""
    B, T = ids.shape
    dev = ids.device
    cand = torch.zeros(B, T + 1, dtype=torch.bool, device=dev)
    if cfg.scheme == "entropy":
        if entropies is None:
            raise ValueError("entropies: the entropy scheme needs entropies (got None)")
        if entropies.shape != ids.shape:
            raise ValueError(f"entropies: shape {tuple(entropies.shape)} does not match ids {tuple(ids.shape)}")
        H = entropies.float()
        if cfg.use_monotonic:
            if T >= 2:
                cand[:, 2:] = (H[:, 1:] - H[:, :-1]) > cfg.monotonic_threshold
        else:
            cand[:, 1:] = H > cfg.entropy_threshold
    elif cfg.scheme == "fixed":
        s = torch.arange(T + 1, device=dev)
        cand[:] = ((s - 1) % cfg.stride == 0)[None]
    elif cfg.scheme == "space":
        # start at s iff byte s-1 is space-like and byte s-2 is not (BOS counts as space-like)
        sp = space_like(ids)
        if T >= 2:
            cand[:, 2:] = sp[:, 1:] & ~sp[:, :-1]
    else:  # pragma: no cover - PatchingConfig validates the scheme
        raise ValueError(f"scheme: unknown {cfg.scheme!r}")
    cand[:, 0] = True
    if T >= 0:
        cand[:, min(1, T)] = True
    return cand


def apply_size_limits(cand: torch.Tensor, min_size: int, max_size: int | None) -> torch.Tensor:
    """Online min/max patch sizes over Bool[B, N] candidates (columns 0 and 1 forced)."""
    if min_size <= 1 and max_size is None:
        return cand
    B, N = cand.shape
    out = cand.clone()
    length = torch.zeros(B, dtype=torch.long, device=cand.device)  # current patch length before s
    for s in range(2, N):
        length = length + 1
        start = cand[:, s] & (length >= min_size)
        if max_size is not None:
            start = start | (length >= max_size)
        out[:, s] = start
        length = torch.where(start, torch.zeros_like(length), length)
    return out


def patch_starts(ids: torch.Tensor, entropies: torch.Tensor | None, cfg: PatchingConfig) -> torch.Tensor:
    """ids: Long[B, T], entropies: Float[B, T] or None -> starts Bool[B, T + 1]."""
    if ids.dim() != 2:
        raise ValueError(f"ids: expected shape [batch, length], got {tuple(ids.shape)}")
    cand = candidate_starts(ids, entropies, cfg)
    if cfg.scheme == "fixed":
        # a fixed stride already satisfies any min <= stride; max only shortens
        return apply_size_limits(cand, 1, cfg.max_patch_size) if cfg.max_patch_size else cand
    return apply_size_limits(cand, cfg.min_patch_size, cfg.max_patch_size)


def starts_to_patch_ids(starts: torch.Tensor) -> torch.Tensor:
    """Bool[B, N] -> Long[B, N]: the patch index of every position."""
    return starts.long().cumsum(-1) - 1


def starts_to_lengths(starts: torch.Tensor) -> torch.Tensor:
    """Bool[B, T] -> Long[B, P] patch lengths, right-padded with 0."""
    B, T = starts.shape
    pid = starts_to_patch_ids(starts)
    P = int(pid[:, -1].max().item()) + 1 if T > 0 else 0
    lengths = torch.zeros(B, P, dtype=torch.long, device=starts.device)
    lengths.scatter_add_(1, pid.clamp(min=0), torch.ones_like(pid))
    return lengths


def lengths_to_starts(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Long[B, P] (0-padded) -> Bool[B, T]. Lengths of each row must sum to T."""
    if lengths.dim() == 1:
        lengths = lengths[None]
    sums = lengths.sum(-1)
    if not bool((sums == T).all()):
        raise ValueError(f"patch_lengths: each row must sum to the sequence length {T}, got {sums.tolist()}")
    if bool((lengths < 0).any()):
        raise ValueError("patch_lengths: lengths must be >= 0")
    B = lengths.shape[0]
    starts = torch.zeros(B, T + 1, dtype=torch.bool, device=lengths.device)
    offsets = torch.cumsum(lengths, -1) - lengths  # start offset of each patch
    valid = lengths > 0
    rows = torch.arange(B, device=lengths.device)[:, None].expand_as(offsets)
    starts[rows[valid], offsets[valid]] = True
    return starts[:, :T]


def calibrate_threshold(entropies: torch.Tensor, target_mean_patch_size: float) -> float:
    """Entropy threshold giving about one patch start per `target_mean_patch_size` positions.

    The (1 - 1/target) quantile of the finite entropies.
    """
    if target_mean_patch_size < 1:
        raise ValueError(f"target_mean_patch_size: must be >= 1, got {target_mean_patch_size}")
    h = entropies.detach().float().flatten()
    h = h[torch.isfinite(h)]
    if h.numel() == 0:
        raise ValueError("entropies: no finite values to calibrate on")
    q = 1.0 - 1.0 / float(target_mean_patch_size)
    return float(torch.quantile(h.cpu(), q).item()) if h.numel() < 16_000_000 else float(
        h.cpu().sort().values[int(q * (h.numel() - 1))].item())


class OnlinePatcher:
    """Incremental patch decisions for generation (batch 1), identical to `patch_starts`.

    feed(id, entropy) consumes position t and returns whether t + 1 starts a patch.
    """

    def __init__(self, cfg: PatchingConfig) -> None:
        self.cfg = cfg
        # compare in float32, as the batched rule does on float32 entropies
        self.theta = np.float32(cfg.entropy_threshold)
        self.theta_r = np.float32(cfg.monotonic_threshold)
        self.t = -1
        self.length = 0  # positions in the patch that holds t (including t)
        self.prev_h: float | None = None
        self.prev_space = True  # BOS counts as space-like

    def feed(self, token_id: int, entropy: float | None) -> bool:
        cfg = self.cfg
        self.t += 1
        t = self.t
        sp = _space_like_id(token_id)
        s = t + 1  # the position being decided
        if s == 1:
            start = True
        else:
            if cfg.scheme == "entropy":
                if cfg.use_monotonic:
                    cand = bool(np.float32(entropy) - np.float32(self.prev_h) > self.theta_r)
                else:
                    cand = bool(np.float32(entropy) > self.theta)
            elif cfg.scheme == "fixed":
                cand = (s - 1) % cfg.stride == 0
            else:
                cand = sp and not self.prev_space
            min_size = 1 if cfg.scheme == "fixed" else cfg.min_patch_size
            start = cand and self.length >= min_size
            if cfg.max_patch_size is not None and self.length >= cfg.max_patch_size:
                start = True
        self.prev_h = entropy
        self.prev_space = sp
        if start:
            self.length = 1
        else:
            self.length += 1
        return bool(start)
