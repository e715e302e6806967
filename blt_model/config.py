"""Configuration dataclasses: the model (`BLTConfig`) and patching (`PatchingConfig`, nested in
`BLTConfig.patching` as the model's own patching).

Both round-trip through JSON; unknown keys and impossible values raise `ValueError` naming
the field, so a typo in a config file never silently falls back to a default.

config.json formats: up to commit 5abe862 the patching fields stood flat in BLTConfig
(`patching_scheme`, `patch_stride`, `entropy_threshold` = null until calibrated,
`initial_entropy_threshold`, ...); `BLTConfig.from_dict` still reads them (`migrate_flat_patching`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .guards import is_int as _is_int
from .guards import is_number as _is_number

MAX_LAYERS = 4096
ATTENTION_KINDS = ("standard", "differential")
PATCHING_SCHEMES = ("entropy", "fixed", "space")


def _check_known_fields(cls: type, data: Any, what: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{what}: unknown field {unknown[0]!r} (known fields: {', '.join(sorted(names))})")


def _check(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{name}: {msg}")


def _check_each(obj: object, names: tuple[str, ...], ok, msg: str) -> None:
    """_check(ok(value)) for each named attribute; `msg` ends with "got <value>"."""
    for name in names:
        v = getattr(obj, name)
        _check(ok(v), name, f"{msg}, got {v!r}")


def _is_bool(v: object) -> bool:
    return isinstance(v, bool)


@dataclass
class PatchingConfig:
    """How a byte sequence is cut into patches (docs/architecture.md, section 2).

    scheme: "entropy" (threshold on the entropy model's next-byte entropy, or its monotonic
    variant with `use_monotonic`), "fixed" (stride bytes per patch) or "space".
    """

    scheme: str = "entropy"
    entropy_threshold: float = 1.5  # nats
    use_monotonic: bool = False
    monotonic_threshold: float = 0.3  # nats of entropy increase
    stride: int = 4
    min_patch_size: int = 1
    max_patch_size: int | None = None
    reset_context: bool = False  # the entropy model's context restarts after each newline

    def __post_init__(self) -> None:
        _check(self.scheme in PATCHING_SCHEMES, "scheme", f"must be one of {PATCHING_SCHEMES}, got {self.scheme!r}")
        _check_each(self, ("entropy_threshold", "monotonic_threshold"), _is_number, "must be a finite number")
        _check_each(self, ("stride", "min_patch_size"), lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
        _check_each(self, ("use_monotonic", "reset_context"), _is_bool, "must be true or false")
        if self.max_patch_size is not None:
            _check(_is_int(self.max_patch_size) and self.max_patch_size >= self.min_patch_size,
                   "max_patch_size", f"must be None or an integer >= min_patch_size ({self.min_patch_size}), got {self.max_patch_size!r}")
        self.entropy_threshold = float(self.entropy_threshold)
        self.monotonic_threshold = float(self.monotonic_threshold)

    @property
    def needs_entropies(self) -> bool:
        return self.scheme == "entropy"

    def replace(self, **changes: Any) -> PatchingConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatchingConfig:
        _check_known_fields(cls, data, "PatchingConfig")
        return cls(**data)


def default_model_patching() -> PatchingConfig:
    """A BLTConfig's patching when none is given: PatchingConfig's defaults with patches of at
    most 16 bytes (a bound on the work one patch costs the decoder)."""
    return PatchingConfig(max_patch_size=16)


def patching_from_dict(data: Any, what: str = "patching") -> PatchingConfig:
    """BLTConfig.patching from JSON: missing fields take `default_model_patching`'s values, and
    errors name the field as `patching.NAME`."""
    _check_known_fields(PatchingConfig, data, what)
    try:
        return PatchingConfig(**{**default_model_patching().to_dict(), **data})
    except ValueError as e:
        raise ValueError(f"{what}.{e}") from None


# config.json up to commit 5abe862: flat patching keys -> PatchingConfig fields. Its
# `entropy_threshold` was null until calibrated, with `initial_entropy_threshold` in use till then.
FLAT_PATCHING_KEYS = {
    "patching_scheme": "scheme", "use_monotonic": "use_monotonic", "monotonic_threshold": "monotonic_threshold",
    "patch_stride": "stride", "min_patch_size": "min_patch_size", "max_patch_size": "max_patch_size",
    "reset_context": "reset_context",
}
_FLAT_THRESHOLD_KEYS = ("entropy_threshold", "initial_entropy_threshold")


def migrate_flat_patching(data: dict[str, Any]) -> dict[str, Any]:
    """A BLTConfig dict with the old flat patching keys -> the nested form (others unchanged)."""
    if not isinstance(data, dict):
        return data  # from_dict refuses it, naming its type
    flat = [k for k in (*FLAT_PATCHING_KEYS, *_FLAT_THRESHOLD_KEYS) if k in data]
    if not flat:
        return data
    if "patching" in data:
        raise ValueError(f"BLTConfig: {flat[0]!r} is an old flat patching field and cannot stand beside "
                         "'patching'; move it into 'patching'")
    patching = {new: data[old] for old, new in FLAT_PATCHING_KEYS.items() if old in data}
    calibrated = data.get("entropy_threshold")
    threshold = calibrated if calibrated is not None else data.get("initial_entropy_threshold")
    if threshold is not None:
        patching["entropy_threshold"] = threshold
    rest = {k: v for k, v in data.items() if k not in flat}
    return {"entropy_threshold_calibrated": calibrated is not None, **rest, "patching": patching}


# BLTConfig fields by the check they get
_POSITIVE_INTS = ("hidden_size", "intermediate_size", "num_heads", "window_size", "global_layers",
                  "max_position_embeddings", "ngram_vocab_size", "cross_attn_k", "decoder_memory_patches",
                  "entropy_model_layers", "entropy_hidden_size", "entropy_num_heads",
                  "entropy_intermediate_size", "entropy_context_size", "ngram_hash_functions")
_OPTIONAL_POSITIVE_INTS = ("global_hidden_size", "global_intermediate_size", "global_num_heads",
                           "decoder_intermediate_size")
_LAYER_COUNTS = ("encoder_layers", "decoder_layers", "global_layers", "entropy_model_layers")
_BOOLS = ("decoder_gate", "cross_attn_all_layers_decoder", "headwise_norm", "entropy_threshold_calibrated",
          "cross_attn_double_residual", "global_final_norm", "last_position_continues_patch")
_ATTENTION_FIELDS = ("encoder_attention", "global_attention", "decoder_attention", "entropy_attention")


@dataclass
class BLTConfig:
    """Everything that defines a BLT model. Widths: `hidden_size` for the local encoder and
    decoder, `global_hidden_size` for the global transformer (None = same); the
    `effective_*` properties resolve such Nones."""

    # --- local stacks (encoder / decoder) ---
    hidden_size: int = 128
    intermediate_size: int = 384
    num_heads: int = 4
    encoder_layers: int = 1
    decoder_layers: int = 2
    window_size: int = 256
    # --- global transformer ---
    global_layers: int = 3
    global_hidden_size: int | None = 384
    global_intermediate_size: int | None = 1024
    global_num_heads: int | None = 6
    max_position_embeddings: int = 2048
    # --- regularisation ---
    attention_dropout: float = 0.0
    resid_dropout: float = 0.0
    # --- hash n-gram embeddings ---
    ngram_vocab_size: int = 2048
    ngram_sizes: list[int] = field(default_factory=lambda: [3, 4, 5, 6, 7, 8])
    ngram_hash_functions: int = 1
    # --- pooling / cross-attention ---
    cross_attn_k: int = 3
    decoder_memory_patches: int = 1
    decoder_gate: bool = False
    cross_attn_all_layers_decoder: bool = True
    # --- attention kinds per stack ---
    encoder_attention: str = "standard"
    global_attention: str = "standard"
    decoder_attention: str = "standard"
    entropy_attention: str = "standard"
    headwise_norm: bool = True
    # --- entropy model ---
    entropy_model_layers: int = 2
    entropy_hidden_size: int = 128
    entropy_num_heads: int = 4
    entropy_intermediate_size: int = 384
    entropy_context_size: int = 256
    # --- patching: the model's own (used when no PatchingConfig is given). Its entropy_threshold
    # is the initial one until training calibrates it on data to give `target_mean_patch_size`
    # bytes per patch; `entropy_threshold_calibrated` records that this happened ---
    patching: PatchingConfig = field(default_factory=default_model_patching)
    entropy_threshold_calibrated: bool = False
    target_mean_patch_size: float = 4.5
    # --- numerics ---
    rope_theta: float = 10000.0
    global_rope_theta: float | None = None
    norm_eps: float = 1e-5
    vocab_size: int = 260
    # --- variants of other implementations (the defaults are this project's behaviour; a model
    # converted from transformers' BltForCausalLM sets them to reproduce it, see io/hf_config.py) ---
    entropy_rope_theta: float | None = None  # None: rope_theta
    decoder_intermediate_size: int | None = None  # None: intermediate_size
    # the cross-attention output already contains its query input, so adding it to the residual
    # stream counts the input twice (encoder pooling and decoder)
    cross_attn_double_residual: bool = False
    global_final_norm: bool = True  # RMSNorm on the global transformer's output
    # the prediction at the last position assumes the next byte continues the current patch
    # (reads the patch before it) even when the patcher would start a new one there
    last_position_continues_patch: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.ngram_sizes, tuple):
            self.ngram_sizes = list(self.ngram_sizes)
        if isinstance(self.patching, dict):
            self.patching = patching_from_dict(self.patching)
        _check(isinstance(self.patching, PatchingConfig), "patching",
               f"must be a PatchingConfig or a JSON object, got {type(self.patching).__name__}")
        self._check_sizes()
        self._check_kinds()
        self._check_head_layouts()
        self._check_numbers()

    def _check_sizes(self) -> None:
        _check_each(self, _POSITIVE_INTS, lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
        _check_each(self, ("encoder_layers", "decoder_layers"), lambda v: _is_int(v) and v >= 0,
                    "must be an integer >= 0")
        _check(self.decoder_layers >= 1, "decoder_layers", "must be >= 1 (the decoder reads the patch latents)")
        # the largest published models have ~100 layers; a bound keeps a typo from building for hours
        _check_each(self, _LAYER_COUNTS, lambda v: v <= MAX_LAYERS, f"must be <= {MAX_LAYERS}")
        _check(self.ngram_hash_functions <= 64, "ngram_hash_functions", f"must be <= 64, got {self.ngram_hash_functions!r}")
        _check_each(self, _OPTIONAL_POSITIVE_INTS, lambda v: v is None or (_is_int(v) and v >= 1),
                    "must be None or an integer >= 1")
        _check(_is_int(self.vocab_size) and self.vocab_size == 260, "vocab_size",
               f"must be 260 (the BLT id layout), got {self.vocab_size!r}")
        # n-gram hashing loops over the sizes for every byte: a handful of small sizes is the design
        _check(isinstance(self.ngram_sizes, list) and 1 <= len(self.ngram_sizes) <= 64
               and all(_is_int(n) and 2 <= n <= 1024 for n in self.ngram_sizes),
               "ngram_sizes", f"must be a list of 1 to 64 integers in [2, 1024], got {self.ngram_sizes!r}")

    def _check_kinds(self) -> None:
        _check_each(self, _BOOLS, _is_bool, "must be true or false")
        _check_each(self, _ATTENTION_FIELDS, lambda v: v in ATTENTION_KINDS, f"must be one of {ATTENTION_KINDS}")

    def _check_head_layouts(self) -> None:
        # differential attention uses half the heads, so needs an even count
        stacks = [("num_heads", self.num_heads, self.hidden_size, (self.encoder_attention, self.decoder_attention)),
                  ("global_num_heads", self.effective_global_num_heads, self.effective_global_hidden_size,
                   (self.global_attention,)),
                  ("entropy_num_heads", self.entropy_num_heads, self.entropy_hidden_size, (self.entropy_attention,))]
        for name, heads, width, kinds in stacks:
            _check(width % heads == 0, name, f"{heads} heads do not divide width {width}")
            _check((width // heads) % 2 == 0, name, f"head dimension {width // heads} must be even for rotary embeddings")
            if "differential" in kinds:
                _check(heads % 2 == 0, name, f"differential attention needs an even number of heads, got {heads}")

    def _check_numbers(self) -> None:
        _check_each(self, ("attention_dropout", "resid_dropout"), lambda v: _is_number(v) and 0.0 <= v < 1.0,
                    "must be in [0, 1)")
        _check_each(self, ("rope_theta", "norm_eps", "target_mean_patch_size"), _is_number, "must be a finite number")
        _check(self.rope_theta > 0, "rope_theta", "must be > 0")
        _check(self.norm_eps > 0, "norm_eps", "must be > 0")
        _check(self.target_mean_patch_size >= 1, "target_mean_patch_size", "must be >= 1")
        _check_each(self, ("global_rope_theta", "entropy_rope_theta"), lambda v: v is None or (_is_number(v) and v > 0),
                    "must be None or a finite number > 0")

    # --- sizes with their defaults resolved (a None field means "same as the local one") ---
    @property
    def effective_global_hidden_size(self) -> int:
        return self.global_hidden_size or self.hidden_size

    @property
    def effective_global_intermediate_size(self) -> int:
        return self.global_intermediate_size or self.intermediate_size

    @property
    def effective_global_num_heads(self) -> int:
        return self.global_num_heads or self.num_heads

    @property
    def effective_global_rope_theta(self) -> float:
        return self.global_rope_theta or self.rope_theta

    @property
    def effective_entropy_rope_theta(self) -> float:
        return self.entropy_rope_theta or self.rope_theta

    @property
    def effective_decoder_intermediate_size(self) -> int:
        return self.decoder_intermediate_size or self.intermediate_size

    # --- patching ---
    def with_patching(self, **changes: Any) -> BLTConfig:
        """A copy whose own patching has `changes` (PatchingConfig field names)."""
        return self.replace(patching=self.patching.replace(**changes))

    def set_calibrated_threshold(self, threshold: float) -> None:
        """Record the entropy threshold calibrated on data (training stage 1) as the one in use."""
        self.patching = self.patching.replace(entropy_threshold=threshold)
        self.entropy_threshold_calibrated = True

    def without_calibration(self) -> BLTConfig:
        """A copy with the entropy threshold at its default and not calibrated: configs equal
        this way differ at most in what calibration changed."""
        return self.replace(patching=self.patching.replace(entropy_threshold=default_model_patching().entropy_threshold),
                            entropy_threshold_calibrated=False)

    def replace(self, **changes: Any) -> BLTConfig:
        # the copy gets its own PatchingConfig, so changing one config's patching never changes the other's
        return dataclasses.replace(self, **{"patching": self.patching.replace(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BLTConfig:
        """Also reads the flat patching keys of configs saved up to commit 5abe862."""
        data = migrate_flat_patching(data)
        _check_known_fields(cls, data, "BLTConfig")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BLTConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"BLTConfig: not valid JSON ({e})") from None
        return cls.from_dict(data)

    @classmethod
    def preset(cls, name: str) -> BLTConfig:
        if name not in PRESETS:
            raise ValueError(f"preset: unknown preset {name!r} (choose from {', '.join(PRESETS)})")
        return cls(**PRESETS[name])


PRESETS: dict[str, dict[str, Any]] = {
    # a few million parameters: trains on a 2-core CPU in about an hour, checkpoint < 25 MB
    "tiny": dict(window_size=512, entropy_context_size=512, max_position_embeddings=512),
    "small": dict(
        hidden_size=256, intermediate_size=768, num_heads=4, encoder_layers=1, decoder_layers=3,
        window_size=512, global_layers=6, global_hidden_size=512, global_intermediate_size=1536,
        global_num_heads=8, max_position_embeddings=4096, ngram_vocab_size=16384, cross_attn_k=2,
        entropy_model_layers=4, entropy_hidden_size=256, entropy_num_heads=4,
        entropy_intermediate_size=768, entropy_context_size=512, attention_dropout=0.05, resid_dropout=0.05,
    ),
    # the design notes' Basic Configuration
    "base": dict(
        hidden_size=512, intermediate_size=2048, num_heads=16, encoder_layers=2, global_layers=8,
        decoder_layers=6, attention_dropout=0.12, resid_dropout=0.12, ngram_vocab_size=150000,
        window_size=512, max_position_embeddings=4096, global_hidden_size=None,
        global_intermediate_size=None, global_num_heads=None, cross_attn_k=1,
        entropy_model_layers=2, entropy_hidden_size=512, entropy_num_heads=8,
        entropy_intermediate_size=2048, entropy_context_size=512,
    ),
    # the design notes' Advanced Configuration
    "large": dict(
        hidden_size=768, intermediate_size=3072, num_heads=24, encoder_layers=4, global_layers=12,
        decoder_layers=8, attention_dropout=0.1, resid_dropout=0.1, ngram_vocab_size=200000,
        window_size=1024, max_position_embeddings=8192, global_hidden_size=None,
        global_intermediate_size=None, global_num_heads=None, cross_attn_k=1,
        entropy_model_layers=3, entropy_hidden_size=768, entropy_num_heads=12,
        entropy_intermediate_size=3072, entropy_context_size=1024, patching={"entropy_threshold": 1.5},
    ),
}
