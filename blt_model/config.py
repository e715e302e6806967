"""Configuration dataclasses: the model (`BLTConfig`) and patching (`PatchingConfig`).

Both round-trip through JSON; unknown keys and impossible values raise `ValueError` naming
the field, so a typo in a config file never silently falls back to a default.
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


def _from_dict(cls, data: dict[str, Any], what: str):
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{what}: unknown field {unknown[0]!r} (known fields: {', '.join(sorted(names))})")
    return cls(**data)


def _check(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{name}: {msg}")


@dataclass
class PatchingConfig:
    """How a byte sequence is cut into patches (see architecture.md section 2).

    scheme: "entropy" (threshold on the entropy model's next-byte entropy, or its monotonic
    variant with `use_monotonic`), "fixed" (stride bytes per patch) or "space".
    """

    scheme: str = "entropy"
    entropy_threshold: float = 1.5
    use_monotonic: bool = False
    monotonic_threshold: float = 0.3
    stride: int = 4
    min_patch_size: int = 1
    max_patch_size: int | None = None
    reset_context: bool = False

    def __post_init__(self) -> None:
        _check(self.scheme in PATCHING_SCHEMES, "scheme", f"must be one of {PATCHING_SCHEMES}, got {self.scheme!r}")
        _check(_is_number(self.entropy_threshold),
               "entropy_threshold", f"must be a finite number, got {self.entropy_threshold!r}")
        _check(_is_number(self.monotonic_threshold),
               "monotonic_threshold", f"must be a finite number, got {self.monotonic_threshold!r}")
        _check(_is_int(self.stride) and self.stride >= 1, "stride", f"must be an integer >= 1, got {self.stride!r}")
        _check(_is_int(self.min_patch_size) and self.min_patch_size >= 1,
               "min_patch_size", f"must be an integer >= 1, got {self.min_patch_size!r}")
        for name in ("use_monotonic", "reset_context"):
            _check(isinstance(getattr(self, name), bool), name, f"must be true or false, got {getattr(self, name)!r}")
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
        return _from_dict(cls, data, "PatchingConfig")


@dataclass
class BLTConfig:
    """Everything that defines a BLT model. Widths: `hidden_size` for the local encoder and
    decoder, `global_hidden_size` for the global transformer (None = same)."""

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
    # --- patching defaults (used when no PatchingConfig is given) ---
    patching_scheme: str = "entropy"
    entropy_threshold: float | None = None
    initial_entropy_threshold: float = 1.5
    use_monotonic: bool = False
    monotonic_threshold: float = 0.3
    patch_stride: int = 4
    min_patch_size: int = 1
    max_patch_size: int | None = 16
    reset_context: bool = False
    target_mean_patch_size: float = 4.5
    # --- numerics ---
    rope_theta: float = 10000.0
    global_rope_theta: float | None = None
    norm_eps: float = 1e-5
    vocab_size: int = 260
    # --- variants of other implementations (the defaults are this project's behaviour; a model
    # converted from transformers' BltForCausalLM sets them to reproduce it, see hf_compat.py) ---
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
        pos_int = ["hidden_size", "intermediate_size", "num_heads", "window_size", "global_layers",
                   "max_position_embeddings", "ngram_vocab_size", "cross_attn_k", "decoder_memory_patches",
                   "entropy_model_layers", "entropy_hidden_size", "entropy_num_heads",
                   "entropy_intermediate_size", "entropy_context_size", "patch_stride", "min_patch_size",
                   "ngram_hash_functions"]
        for name in pos_int:
            v = getattr(self, name)
            _check(_is_int(v) and v >= 1, name, f"must be an integer >= 1, got {v!r}")
        for name in ("encoder_layers", "decoder_layers"):
            v = getattr(self, name)
            _check(_is_int(v) and v >= 0, name, f"must be an integer >= 0, got {v!r}")
        _check(self.decoder_layers >= 1, "decoder_layers", "must be >= 1 (the decoder reads the patch latents)")
        # the largest published models have ~100 layers; a bound keeps a typo from building for hours
        for name in ("encoder_layers", "decoder_layers", "global_layers", "entropy_model_layers"):
            _check(getattr(self, name) <= MAX_LAYERS, name, f"must be <= {MAX_LAYERS}, got {getattr(self, name)!r}")
        _check(self.ngram_hash_functions <= 64, "ngram_hash_functions", f"must be <= 64, got {self.ngram_hash_functions!r}")
        for name in ("global_hidden_size", "global_intermediate_size", "global_num_heads"):
            v = getattr(self, name)
            _check(v is None or (_is_int(v) and v >= 1), name, f"must be None or an integer >= 1, got {v!r}")
        for name in ("attention_dropout", "resid_dropout"):
            v = getattr(self, name)
            _check(_is_number(v) and 0.0 <= v < 1.0, name, f"must be in [0, 1), got {v!r}")
        for name in ("decoder_gate", "cross_attn_all_layers_decoder", "headwise_norm", "use_monotonic", "reset_context"):
            _check(isinstance(getattr(self, name), bool), name, f"must be true or false, got {getattr(self, name)!r}")
        _check(_is_int(self.vocab_size) and self.vocab_size == 260, "vocab_size", f"must be 260 (the BLT id layout), got {self.vocab_size!r}")
        # n-gram hashing loops over the sizes for every byte: a handful of small sizes is the design
        _check(isinstance(self.ngram_sizes, list) and 1 <= len(self.ngram_sizes) <= 64
               and all(_is_int(n) and 2 <= n <= 1024 for n in self.ngram_sizes),
               "ngram_sizes", f"must be a list of 1 to 64 integers in [2, 1024], got {self.ngram_sizes!r}")
        for name in ("encoder_attention", "global_attention", "decoder_attention", "entropy_attention"):
            v = getattr(self, name)
            _check(v in ATTENTION_KINDS, name, f"must be one of {ATTENTION_KINDS}, got {v!r}")
        # head layout: differential attention uses half the heads, so needs an even count
        stacks = [("num_heads", self.num_heads, self.hidden_size, (self.encoder_attention, self.decoder_attention)),
                  ("global_num_heads", self.g_heads, self.g_hidden, (self.global_attention,)),
                  ("entropy_num_heads", self.entropy_num_heads, self.entropy_hidden_size, (self.entropy_attention,))]
        for name, heads, width, kinds in stacks:
            _check(width % heads == 0, name, f"{heads} heads do not divide width {width}")
            _check((width // heads) % 2 == 0, name, f"head dimension {width // heads} must be even for rotary embeddings")
            if "differential" in kinds:
                _check(heads % 2 == 0, name, f"differential attention needs an even number of heads, got {heads}")
        for name in ("rope_theta", "norm_eps", "initial_entropy_threshold", "monotonic_threshold", "target_mean_patch_size"):
            v = getattr(self, name)
            _check(_is_number(v), name, f"must be a finite number, got {v!r}")
        _check(self.rope_theta > 0, "rope_theta", "must be > 0")
        _check(self.norm_eps > 0, "norm_eps", "must be > 0")
        _check(self.target_mean_patch_size >= 1, "target_mean_patch_size", "must be >= 1")
        _check(self.entropy_threshold is None or _is_number(self.entropy_threshold),
               "entropy_threshold", f"must be None (not calibrated) or a finite number, got {self.entropy_threshold!r}")
        for name in ("global_rope_theta", "entropy_rope_theta"):
            v = getattr(self, name)
            _check(v is None or (_is_number(v) and v > 0), name, f"must be None or a finite number > 0, got {v!r}")
        v = self.decoder_intermediate_size
        _check(v is None or (_is_int(v) and v >= 1),
               "decoder_intermediate_size", f"must be None or an integer >= 1, got {v!r}")
        for name in ("cross_attn_double_residual", "global_final_norm", "last_position_continues_patch"):
            _check(isinstance(getattr(self, name), bool), name, f"must be true or false, got {getattr(self, name)!r}")
        # the patching defaults must form a valid PatchingConfig
        try:
            self.default_patching()
        except ValueError as e:
            raise ValueError(f"patching defaults: {e}") from None

    # resolved widths
    @property
    def g_hidden(self) -> int:
        return self.global_hidden_size or self.hidden_size

    @property
    def g_intermediate(self) -> int:
        return self.global_intermediate_size or self.intermediate_size

    @property
    def g_heads(self) -> int:
        return self.global_num_heads or self.num_heads

    @property
    def g_rope_theta(self) -> float:
        return self.global_rope_theta or self.rope_theta

    @property
    def e_rope_theta(self) -> float:
        return self.entropy_rope_theta or self.rope_theta

    @property
    def d_intermediate(self) -> int:
        return self.decoder_intermediate_size or self.intermediate_size

    @property
    def threshold(self) -> float:
        """The entropy threshold in use: the calibrated one, else the initial one."""
        return self.entropy_threshold if self.entropy_threshold is not None else self.initial_entropy_threshold

    def default_patching(self) -> PatchingConfig:
        return PatchingConfig(
            scheme=self.patching_scheme,
            entropy_threshold=self.threshold,
            use_monotonic=self.use_monotonic,
            monotonic_threshold=self.monotonic_threshold,
            stride=self.patch_stride,
            min_patch_size=self.min_patch_size,
            max_patch_size=self.max_patch_size,
            reset_context=self.reset_context,
        )

    def replace(self, **changes: Any) -> BLTConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BLTConfig:
        return _from_dict(cls, data, "BLTConfig")

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
        entropy_intermediate_size=3072, entropy_context_size=1024, initial_entropy_threshold=1.5,
    ),
}
