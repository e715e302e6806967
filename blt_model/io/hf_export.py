"""This project's BLT -> a transformers BLT directory (`BltForCausalLM`): the reverse of `hf_compat`.

Only models that transformers' BLT can express are exported: those whose config is exactly what
`hf_config_to_blt` makes of some transformers config (the switches a converted model has:
double residual in cross-attention, no norm after the global stack, the last position's patch
rule, entropy patching with a calibrated threshold, standard attention, one decoder memory patch,
no decoder gate, ...). `blt_config_to_hf` builds the transformers config and converts it back; the
first field that does not come back unchanged is named in the refusal.

Weights are the loader's plan (`hf_weights.plan_weights`) run backwards: fused q/k/v and gate/up
are split, rotary rows permuted back to interleaved pairs. Key/value heads are written one per
query head (`num_key_value_heads` = `num_attention_heads`): a model converted from grouped heads
has them repeated, and fine-tuning may have made the copies differ. Each tensor is checked by
running the loader's mapping forward on it. Model code does no printing; no transformers import.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..config import BLTConfig
from ..nn.model import BLT
from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointError
from .files import atomic_write, atomic_write_text, fault_point
from .hf_config import HF_MODEL_TYPE, hf_config_to_blt
from .hf_weights import plan_weights

__all__ = ["HFExportError", "blt_config_to_hf", "hf_state_dict", "save_hf_model"]

_WHERE = "transformers' BLT"


class HFExportError(CheckpointError):
    """The model cannot be written in transformers' BLT format (the message names the field)."""


def _sub(hidden: int, heads: int, layers: int, ffn: int, eps: float, theta: float, **extra: Any) -> dict[str, Any]:
    return dict(hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=heads, num_hidden_layers=layers,
                intermediate_size=ffn, rms_norm_eps=eps, hidden_act="silu",
                rope_parameters={"rope_theta": float(theta), "rope_type": "default"}, **extra)


def _hf_dict(c: BLTConfig) -> dict[str, Any]:
    """The transformers config that `hf_config_to_blt` would turn into `c`, if there is one."""
    D, H, k, Dg, eps, pos = (c.hidden_size, c.num_heads, c.cross_attn_k, c.effective_global_hidden_size,
                             c.norm_eps, c.max_position_embeddings)
    local = dict(cross_attn_k=k, hidden_size_global=Dg, max_position_embeddings=pos, sliding_window=c.window_size)
    return dict(
        model_type=HF_MODEL_TYPE, architectures=["BltForCausalLM"], vocab_size=c.vocab_size,
        max_position_embeddings=pos, patch_in_forward=True, patch_size=4, patching_mode="entropy",
        patching_threshold=float(c.patching.entropy_threshold), max_patch_length=c.patching.max_patch_size,
        local_attention_window_len=c.window_size, cross_attn_k=k, encoder_hash_byte_group_size=list(c.ngram_sizes),
        encoder_hash_byte_group_vocab=c.ngram_vocab_size, encoder_hash_byte_group_nb_functions=c.ngram_hash_functions,
        tie_word_embeddings=False,
        encoder_config=_sub(D, H, c.encoder_layers, c.intermediate_size, eps, c.rope_theta,
                            cross_attn_all_layers=False, **local),
        decoder_config=_sub(D, H, c.decoder_layers, c.decoder_intermediate_size or c.intermediate_size, eps,
                            c.rope_theta, cross_attn_all_layers=c.cross_attn_all_layers_decoder, **local),
        global_config=_sub(Dg, c.effective_global_num_heads, c.global_layers, c.effective_global_intermediate_size,
                           eps, c.effective_global_rope_theta, max_position_embeddings=pos),
        patcher_config=_sub(c.entropy_hidden_size, c.entropy_num_heads, c.entropy_model_layers,
                            c.entropy_intermediate_size, eps, c.effective_entropy_rope_theta,
                            max_position_embeddings=pos, sliding_window=c.entropy_context_size),
    )


def _first_difference(ours: dict[str, Any], back: dict[str, Any], prefix: str = "") -> tuple[str, Any, Any] | None:
    for key, value in ours.items():
        other = back.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            diff = _first_difference(value, other, f"{prefix}{key}.")
            if diff is not None:
                return diff
        elif value != other:
            return f"{prefix}{key}", value, other
    return None


def blt_config_to_hf(config: BLTConfig) -> dict[str, Any]:
    """The transformers BltConfig (a config.json dict) that reproduces `config`; HFExportError
    naming the first field transformers' BLT cannot express."""
    if config.patching.scheme != "entropy":
        raise HFExportError(f"patching.scheme {config.patching.scheme!r} cannot be expressed in {_WHERE} "
                            "(it patches by entropy with the model's threshold)")
    hf = _hf_dict(config)
    try:
        back = hf_config_to_blt(hf, _WHERE)
    except CheckpointError as e:
        raise HFExportError(f"cannot be expressed in {e}") from None
    diff = _first_difference(config.to_dict(), back.to_dict())
    if diff is not None:
        name, value, fixed = diff
        raise HFExportError(f"{name} = {value!r} cannot be expressed in {_WHERE} (it has {name} = {fixed!r}); "
                            "only models with the behaviour of a converted transformers model can be exported")
    return hf


def _inverse_rope_rows(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Rotate-half pairs (i, i + d/2) -> transformers' interleaved pairs (2i, 2i+1)."""
    d = w.shape[0] // heads
    perm = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])
    return w.view(heads, d, -1)[:, torch.argsort(perm)].reshape(heads * d, -1)


def _heads(config: BLTConfig, ours: str) -> int:
    """Query heads of the self-attention that `ours` (a fused q/k/v weight) belongs to."""
    if ours.startswith("entropy_model."):
        return config.entropy_num_heads
    if ours.startswith("global_model."):
        return config.effective_global_num_heads
    return config.num_heads


def _split(config: BLTConfig, ours: str, t: torch.Tensor, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    """One of our tensors -> the transformers tensors it was made of (fused q/k/v: split, rotary
    rows back to interleaved pairs; gate/up: split)."""
    if len(shapes) == 1:
        return [t]
    parts = list(torch.split(t, [s[0] for s in shapes], 0))
    if len(parts) == 3:  # q, k, v of a self-attention (every self-attention here is rotary)
        heads = _heads(config, ours)
        parts[0], parts[1] = _inverse_rope_rows(parts[0], heads), _inverse_rope_rows(parts[1], heads)
    return parts


def hf_state_dict(model: BLT, hf: dict[str, Any], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """transformers tensor name -> tensor, for the config `hf` (from `blt_config_to_hf`). Every
    tensor is checked by mapping it forward again as the loader does."""
    ours = model.state_dict()
    plan = plan_weights(hf, model.config, _WHERE)
    state: dict[str, torch.Tensor] = {}
    for name, sources, fn in plan.items:
        t = ours[name].detach().cpu()
        parts = _split(model.config, name, t, [s for _, s in sources])
        if not torch.equal(fn(*parts), t):  # pragma: no cover - a mapping bug
            raise HFExportError(f"internal mapping error for {name!r}")
        for (key, shape), part in zip(sources, parts):
            if tuple(part.shape) != shape:  # pragma: no cover - a mapping bug
                raise HFExportError(f"internal mapping error for {name!r} ({key!r})")
            if dtype is not None and part.is_floating_point():
                part = part.to(dtype)
            state[key if key == "lm_head.weight" else f"model.{key}"] = part.contiguous()
    return state


def save_hf_model(model: BLT, directory: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
    """Write `model` as a transformers BLT directory: `model.safetensors` then `config.json`, each
    atomically. HFExportError (nothing written) if transformers' BLT cannot express it."""
    from safetensors.torch import save_file

    hf = blt_config_to_hf(model.config)
    state = hf_state_dict(model, hf, dtype)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    fault_point("between_weights_and_config")
    atomic_write_text(directory / CONFIG_NAME, json.dumps(hf, indent=2) + "\n")
    return directory
