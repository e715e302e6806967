"""transformers' BltConfig (a config.json dict) -> the `BLTConfig` that reproduces it.

See `hf_compat` for the whole conversion. The converted config sets the fields that reproduce
transformers (`cross_attn_double_residual`, `global_final_norm=False`,
`last_position_continues_patch`, per-component rotary bases and widths); the global entropy
threshold and `max_patch_length` become the model's patching, windows come from
`local_attention_window_len` and the patcher's `sliding_window` (None: no window, i.e. a window
as long as the context).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import BLTConfig
from ..ids import VOCAB_SIZE
from .checkpoint import CONFIG_NAME, CheckpointError, read_config

HF_MODEL_TYPE = "blt"
SUB_CONFIGS = ("encoder_config", "decoder_config", "global_config", "patcher_config")
_DEFAULT_THRESHOLD = 1.335442066192627  # transformers' BltConfig.patching_threshold

# transformers' defaults for keys a config.json may leave out (BltConfig and its sub-configs)
_TOP_DEFAULTS: dict[str, Any] = dict(
    vocab_size=260, patch_in_forward=True, patch_size=4, patching_mode="entropy",
    patching_threshold=_DEFAULT_THRESHOLD, max_patch_length=None, local_attention_window_len=512,
    cross_attn_k=2, encoder_hash_byte_group_size=None, encoder_hash_byte_group_vocab=500002,
    encoder_hash_byte_group_nb_functions=1, tie_word_embeddings=False)
_SUB_DEFAULTS: dict[str, dict[str, Any]] = {
    "encoder_config": dict(hidden_size=1024, num_attention_heads=16, num_hidden_layers=1, rms_norm_eps=1e-5,
                           intermediate_size=None, hidden_act="silu", cross_attn_all_layers=False,
                           cross_attn_k=2, max_position_embeddings=24576, rope_theta=500000.0),
    "decoder_config": dict(hidden_size=1024, num_attention_heads=16, num_hidden_layers=9, rms_norm_eps=1e-5,
                           intermediate_size=2816, hidden_act="silu", cross_attn_all_layers=True,
                           cross_attn_k=2, hidden_size_global=2048, max_position_embeddings=24576,
                           rope_theta=500000.0),
    "global_config": dict(hidden_size=2048, num_attention_heads=16, num_hidden_layers=25, rms_norm_eps=1e-5,
                          intermediate_size=5632, hidden_act="silu", rope_theta=500000.0),
    "patcher_config": dict(hidden_size=768, num_attention_heads=12, num_hidden_layers=14, rms_norm_eps=1e-5,
                           intermediate_size=2048, hidden_act="silu", max_position_embeddings=8192,
                           sliding_window=512, rope_theta=10000.0),
}


def is_hf_model_dir(path: str | os.PathLike) -> bool:
    """True if `path` is a directory whose config.json names a transformers model type."""
    p = Path(path).expanduser() / CONFIG_NAME
    try:
        raw = read_config(p)
    except CheckpointError:
        return False
    return isinstance(raw, dict) and raw.get("model_type") is not None


def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise CheckpointError(f"{where}: {msg}")


class SubConfig:
    """One sub-config (encoder, decoder, global, patcher) with transformers' defaults; `hidden`,
    `heads`, `layers`, `ffn` (intermediate size) and `kv_heads` checked and resolved."""

    def __init__(self, raw: dict, name: str, where: str) -> None:
        d = raw.get(name)
        if d is None:
            d = {}
        _need(isinstance(d, dict), where, f"{name} must be a JSON object, got {type(d).__name__}")
        self.name, self.where = name, where
        self.d = {**_SUB_DEFAULTS[name], **{k: v for k, v in d.items() if v is not None or k in ("sliding_window",)}}
        for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                    "num_key_value_heads"):
            v = self.d.get(key)
            if v is None and key in ("intermediate_size", "num_key_value_heads"):
                continue  # computed / defaulted below
            low = 0 if key == "num_hidden_layers" else 1
            _need(isinstance(v, int) and not isinstance(v, bool) and v >= low, where,
                  f"{name}.{key} must be an integer >= {low}, got {v!r}")
        self.hidden, self.heads, self.layers = (int(self.d[k]) for k in ("hidden_size", "num_attention_heads",
                                                                         "num_hidden_layers"))
        if name == "encoder_config" and self.d.get("intermediate_size") is None:
            self.d["intermediate_size"] = int(8 * self.hidden / 3)
        self.ffn = int(self.d["intermediate_size"])
        heads = self.heads
        _need(self.hidden % heads == 0, where,
              f"{name}.num_attention_heads {heads} does not divide hidden_size {self.hidden}")
        kv = self.d.get("num_key_value_heads") or heads
        _need(heads % kv == 0, where, f"{name}.num_key_value_heads {kv} does not divide num_attention_heads {heads}")
        self.kv_heads = kv
        act = self.d.get("hidden_act", "silu")
        # transformers forces silu in the patcher
        _need(name == "patcher_config" or act == "silu", where,
              f"{name}.hidden_act {act!r} is not supported (only 'silu', SwiGLU)")

    def __getitem__(self, key: str) -> Any:
        return self.d[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.d.get(key, default)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def rope_theta(self) -> float:
        rp = self.d.get("rope_parameters")
        scaling = self.d.get("rope_scaling")
        if isinstance(rp, dict):
            kind = rp.get("rope_type", rp.get("type", "default"))
            theta = rp.get("rope_theta", self.d["rope_theta"])
        else:
            kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default")) if isinstance(scaling, dict) else "default"
            theta = self.d["rope_theta"]
        _need(kind == "default", self.where, f"{self.name} rotary type {kind!r} is not supported (only 'default')")
        return float(theta)


def sub_configs(raw: dict, where: str) -> tuple[SubConfig, SubConfig, SubConfig, SubConfig]:
    """(encoder, decoder, global, patcher) sub-configs of a transformers config dict."""
    enc, dec, glob, pat = (SubConfig(raw, name, where) for name in SUB_CONFIGS)
    return enc, dec, glob, pat


def _check_supported(top: dict, enc: SubConfig, dec: SubConfig, glob: SubConfig, pat: SubConfig,
                     where: str) -> None:
    """The transformers config has the shape this project's BLT can reproduce."""
    _need(top["vocab_size"] == VOCAB_SIZE and enc.get("vocab_size", VOCAB_SIZE) == VOCAB_SIZE
          and pat.get("vocab_size", VOCAB_SIZE) == VOCAB_SIZE, where, f"vocab_size must be {VOCAB_SIZE} (the BLT byte ids)")
    _need(enc.hidden == dec.hidden, where, f"encoder hidden_size {enc.hidden} != decoder hidden_size {dec.hidden} "
          "(the decoder starts from the encoder's byte states)")
    _need(enc.heads == dec.heads, where,
          f"encoder and decoder num_attention_heads differ ({enc.heads} vs {dec.heads}); not supported")
    _need(enc.layers >= 1, where, "encoder_config.num_hidden_layers must be >= 1 (transformers pools after its last layer)")
    _need(dec.layers >= 1, where, "decoder_config.num_hidden_layers must be >= 1")
    k = top["cross_attn_k"]
    _need(enc["cross_attn_k"] == k and dec["cross_attn_k"] == k, where,
          f"cross_attn_k differs between the config ({k}), encoder ({enc['cross_attn_k']}) and decoder ({dec['cross_attn_k']})")
    _need(dec["hidden_size_global"] == glob.hidden, where,
          f"decoder_config.hidden_size_global {dec['hidden_size_global']} != global_config.hidden_size {glob.hidden}")
    eps = {float(s["rms_norm_eps"]) for s in (enc, dec, glob, pat)}
    _need(len(eps) == 1, where, f"rms_norm_eps differs between components ({sorted(eps)}); not supported")
    theta_enc, theta_dec = enc.rope_theta(), dec.rope_theta()
    _need(theta_enc == theta_dec, where, f"encoder and decoder rotary bases differ ({theta_enc} vs {theta_dec}); not supported")


def _patching_fields(top: dict, where: str) -> dict[str, Any]:
    """The BLTConfig fields of transformers' patching: the patching itself (calibrated, as the
    released threshold is) and where the last position reads."""
    threshold = top["patching_threshold"]
    uses_patcher = top["patching_mode"] == "entropy" and bool(top["patch_in_forward"])
    # Where the last position reads: transformers' patcher ends its patch lengths with an empty
    # patch when H_{T-1} > threshold, so the last position reads its own patch as here; but
    # splitting the lengths at max_patch_length drops empty patches, and then (as with the
    # patcher's one-byte patches without a patch_size) the last position reads the patch before.
    if uses_patcher and top["patch_size"] is not None:
        _need(threshold is not None, where, "patching_threshold is null; the entropy patcher needs one")
        patching = dict(scheme="entropy", max_patch_size=top["max_patch_length"])
        continues = top["max_patch_length"] is not None
    else:  # transformers then makes every byte its own patch
        patching = dict(scheme="fixed", stride=1, max_patch_size=None)
        continues = uses_patcher
    threshold = _DEFAULT_THRESHOLD if threshold is None else float(threshold)
    # a dict, so that BLTConfig names a bad value as patching.NAME
    return dict(patching=dict(entropy_threshold=threshold, **patching), entropy_threshold_calibrated=True,
                last_position_continues_patch=continues)


def _entropy_fields(top: dict, pat: SubConfig, window: int, max_pos: int, theta: float) -> dict[str, Any]:
    """The entropy model's BLTConfig fields: the patcher's, or (no patcher stored) a minimal
    placeholder that fixed patching never runs."""
    theta_pat = pat.rope_theta()  # checked even when unused
    if not top["patch_in_forward"]:
        return dict(entropy_model_layers=1, entropy_hidden_size=8, entropy_num_heads=1,
                    entropy_intermediate_size=8, entropy_context_size=window)
    pat_window = pat.get("sliding_window")
    return dict(entropy_model_layers=pat.layers, entropy_hidden_size=pat.hidden, entropy_num_heads=pat.heads,
                entropy_intermediate_size=pat.ffn, entropy_context_size=max_pos if pat_window is None else int(pat_window),
                entropy_rope_theta=None if theta_pat == theta else theta_pat)


def hf_config_to_blt(raw: dict, where: str = CONFIG_NAME) -> BLTConfig:
    """A transformers BltConfig (as a config.json dict) -> the BLTConfig that reproduces it."""
    mt = raw.get("model_type")
    _need(mt == HF_MODEL_TYPE, where, f"transformers model type {mt!r} is not supported "
          f"(blt-chat loads model_type {HF_MODEL_TYPE!r}, BltForCausalLM)")
    top = {**_TOP_DEFAULTS, **{k: v for k, v in raw.items() if k in _TOP_DEFAULTS}}
    enc, dec, glob, pat = sub_configs(raw, where)
    _check_supported(top, enc, dec, glob, pat, where)
    theta, theta_glob = enc.rope_theta(), glob.rope_theta()
    max_pos = int(max(enc.get("max_position_embeddings", 24576), dec.get("max_position_embeddings", 24576)))
    window = top["local_attention_window_len"]
    window = max_pos if window is None else int(window)
    fields = dict(
        hidden_size=enc.hidden, intermediate_size=enc.ffn, num_heads=enc.heads,
        encoder_layers=enc.layers, decoder_layers=dec.layers, window_size=window,
        decoder_intermediate_size=None if dec.ffn == enc.ffn else dec.ffn,
        global_layers=glob.layers, global_hidden_size=glob.hidden, global_intermediate_size=glob.ffn,
        global_num_heads=glob.heads, max_position_embeddings=max_pos,
        attention_dropout=0.0, resid_dropout=0.0,
        ngram_vocab_size=int(top["encoder_hash_byte_group_vocab"]),
        ngram_sizes=[int(n) for n in top["encoder_hash_byte_group_size"] or [3, 4, 5, 6, 7, 8]],
        ngram_hash_functions=int(top["encoder_hash_byte_group_nb_functions"]),
        cross_attn_k=int(top["cross_attn_k"]), decoder_memory_patches=1, decoder_gate=False,
        cross_attn_all_layers_decoder=bool(dec["cross_attn_all_layers"]),
        rope_theta=theta, global_rope_theta=None if theta_glob == theta else theta_glob,
        norm_eps=float(enc["rms_norm_eps"]), cross_attn_double_residual=True, global_final_norm=False,
        **_entropy_fields(top, pat, window, max_pos, theta), **_patching_fields(top, where))
    try:
        return BLTConfig(**fields)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{where}: cannot be expressed as a blt-chat model ({e})") from None


__all__ = ["HF_MODEL_TYPE", "SubConfig", "hf_config_to_blt", "is_hf_model_dir", "sub_configs"]
