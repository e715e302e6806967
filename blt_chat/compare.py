"""Compare patchings: one analysed text under two to four patching configurations, from the
stored entropies (no model call). Pure logic, no Textual: the inspector's compare screen shows
what this computes.

Per configuration: patch count, mean patch size, the share of bytes at which the global model
runs (it runs once per patch, so patches / bytes) and the model's estimated inference FLOPs per
byte at that mean patch size (`BLT.flops_per_byte`); and how many patches have each length, the
data of the screen's histogram.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

from blt_model import PatchingConfig

from .service import Analysis, ModelService, Patching
from .settings import FIELD_LABELS, check_field

MIN_ROWS = 2
MAX_ROWS = 4
# the inspector's controls: the scheme and these fields (the key of PatchingConfig in brackets)
PATCH_FIELDS = ("threshold", "monotonic_threshold", "stride", "min_patch_size", "max_patch_size")
_CONFIG_KEY = {"threshold": "entropy_threshold"}


def scheme_name(cfg: PatchingConfig) -> str:
    """The scheme as the controls name it ("monotonic" is the entropy scheme's variant)."""
    return "monotonic" if cfg.scheme == "entropy" and cfg.use_monotonic else cfg.scheme


def describe(cfg: PatchingConfig) -> str:
    """A short label: the scheme, the value that drives it and the size limits."""
    scheme = scheme_name(cfg)
    rule = {"entropy": f" θ {cfg.entropy_threshold:.3g}", "monotonic": f" θr {cfg.monotonic_threshold:.3g}",
            "fixed": f" stride {cfg.stride}", "space": ""}[scheme]
    limits = f" min {cfg.min_patch_size}" if cfg.min_patch_size > 1 else ""
    limits += f" max {cfg.max_patch_size}" if cfg.max_patch_size else ""
    return f"{scheme}{rule}{limits}"


def config_from_values(base: PatchingConfig, scheme: str, raw: Mapping[str, str]) -> PatchingConfig:
    """The config the controls describe (text as typed); ValueError names the first invalid field."""
    changes: dict = {}
    if scheme == "monotonic":
        changes.update(scheme="entropy", use_monotonic=True)
    elif scheme == "entropy":
        changes.update(scheme="entropy", use_monotonic=False)
    else:
        changes.update(scheme=scheme)
    for name in PATCH_FIELDS:
        v, error = check_field(name, raw.get(name, ""))
        if error:
            raise ValueError(f"{FIELD_LABELS[name]}: {error}")
        key = _CONFIG_KEY.get(name, name)
        if name == "max_patch_size":
            changes[key] = v or None  # empty or 0: no maximum
        elif v is not None:
            changes[key] = v
    mx = changes.get("max_patch_size", base.max_patch_size)
    mn = changes.get("min_patch_size", base.min_patch_size)
    if mx is not None and mx < mn:
        changes["max_patch_size"] = mn
    return base.replace(**changes)


def values_from_config(cfg: PatchingConfig) -> tuple[str, dict[str, str]]:
    """(scheme, text per field) that `config_from_values` turns back into `cfg`."""
    values = {}
    for name in PATCH_FIELDS:
        v = getattr(cfg, _CONFIG_KEY.get(name, name))
        values[name] = "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
    return scheme_name(cfg), values


@dataclass(frozen=True)
class RowStats:
    config: PatchingConfig
    patching: Patching
    n_bytes: int
    flops_per_byte: float

    @property
    def n_patches(self) -> int:
        return self.patching.n_patches

    @property
    def mean_patch_size(self) -> float:
        return self.patching.mean_patch_size

    @property
    def global_share(self) -> float:
        """Share of bytes at which the global model runs: once per patch."""
        return self.n_patches / self.n_bytes if self.n_bytes else 0.0

    @cached_property
    def length_counts(self) -> dict[int, int]:
        """Patch length (bytes) -> how many patches have it, shortest first."""
        return dict(sorted(Counter(p["length"] for p in self.patching.patches).items()))


def row_stats(analysis: Analysis, cfg: PatchingConfig, flops: Callable[[float], float]) -> RowStats:
    """One configuration's patches and numbers, re-patched from the stored entropies."""
    p = ModelService.repatch(analysis, cfg)
    return RowStats(cfg, p, len(analysis.data), flops(p.mean_patch_size) if p.n_patches else 0.0)


class Comparison:
    """The rows of a comparison; every change re-patches only the row it touches."""

    def __init__(self, analysis: Analysis, configs: list[PatchingConfig],
                 flops: Callable[[float], float]) -> None:
        if not MIN_ROWS <= len(configs) <= MAX_ROWS:
            raise ValueError(f"configurations: {MIN_ROWS} to {MAX_ROWS}, got {len(configs)}")
        self.analysis = analysis
        self.flops = flops
        self.rows = [row_stats(analysis, c, flops) for c in configs]

    def add(self, cfg: PatchingConfig) -> bool:
        if len(self.rows) >= MAX_ROWS:
            return False
        self.rows.append(row_stats(self.analysis, cfg, self.flops))
        return True

    def remove(self, index: int) -> bool:
        if len(self.rows) <= MIN_ROWS or not 0 <= index < len(self.rows):
            return False
        del self.rows[index]
        return True

    def edit(self, index: int, cfg: PatchingConfig) -> bool:
        """Replace row `index`'s config; False (nothing done) when it is the same."""
        if self.rows[index].config == cfg:
            return False
        self.rows[index] = row_stats(self.analysis, cfg, self.flops)
        return True

    def as_json(self) -> list[dict]:
        return [{"patch_config": r.config.to_dict(), "n_patches": r.n_patches,
                 "mean_patch_size": r.mean_patch_size, "global_share": r.global_share,
                 "flops_per_byte": r.flops_per_byte,
                 "patch_starts": [p["start"] for p in r.patching.patches],
                 "patch_length_counts": {str(n): k for n, k in r.length_counts.items()}} for r in self.rows]


@dataclass(frozen=True)
class LengthHistogram:
    """Patch lengths of every row in the same bins: bins[i] = (shortest, longest) length in bin
    i; counts[r][i] = row r's patches in it."""

    bins: list[tuple[int, int]]
    counts: list[list[int]]

    @property
    def labels(self) -> list[str]:
        return [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.bins]


def length_histogram(rows: list[RowStats], max_bins: int) -> LengthHistogram:
    """The rows' patch lengths in at most `max_bins` bins of equal width (one length per bin
    while they fit), from 1 to the longest patch of any row, so the rows' bars line up."""
    longest = max((max(r.length_counts, default=1) for r in rows), default=1)
    width = -(-longest // max(1, max_bins))
    bins = [(lo, min(lo + width - 1, longest)) for lo in range(1, longest + 1, width)]
    counts = []
    for r in rows:
        per_bin = [0] * len(bins)
        for length, k in r.length_counts.items():
            per_bin[(length - 1) // width] += k
        counts.append(per_bin)
    return LengthHistogram(bins, counts)


def default_second(cfg: PatchingConfig) -> PatchingConfig:
    """The row a comparison starts with beside the current one: the space scheme (the paper's
    other dynamic rule), or the entropy scheme when the current one is space."""
    return cfg.replace(scheme="entropy", use_monotonic=False) if cfg.scheme == "space" else cfg.replace(scheme="space")
