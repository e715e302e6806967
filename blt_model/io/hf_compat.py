"""Meta's released BLT weights in the Hugging Face transformers format (`BltForCausalLM`).

A transformers directory holds `config.json` with `"model_type": "blt"` and the weights in
`model.safetensors`, or in shards listed by `model.safetensors.index.json`. `load_hf_model`
turns it into this project's `BLT`, whose outputs match transformers' implementation:

- names and layouts (`hf_weights`): q/k/v fused into `wqkv`, gate/up into `w13`; rotary query/key
  rows permuted from interleaved to rotate-half pairs; grouped key/value heads repeated to one per
  query head; the patcher becomes the entropy model.
- behaviour (`hf_config`): the converted config sets the `BLTConfig` fields that reproduce
  transformers, and its patching (entropy threshold, `max_patch_length`) and windows.
- transformers' local encoder recomputes the pooled patches from scratch at every layer that
  has cross-attention and keeps only the last layer's result, so with `cross_attn_all_layers`
  the encoder is equivalent to one pooling step with its last cross-attention module; the others
  are never used and are not loaded.

Tensors are read from memory-mapped safetensors one at a time and converted straight into the
requested dtype, so a checkpoint needs little more memory than the loaded model. Model code does
no printing: pass `progress(done, total, name)` to watch the load. No transformers import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import torch

from ..guards import terminal_safe
from ..nn.model import BLT
from .checkpoint import (
    CONFIG_NAME,
    CheckpointError,
    check_layer_count,
    check_weights_memory,
    meta_model,
)
from .hf_config import HF_MODEL_TYPE, hf_config_to_blt, is_hf_model_dir
from .hf_weights import HFTensors, WeightPlan, plan_weights

Progress = Callable[[int, int, str], None]
# the encoder's cross-attention layers whose results transformers discards (see above)
_UNUSED = re.compile(r"local_encoder\.cross_attn_layers\.\d+\.")


def _source_names(src: HFTensors, tied: bool) -> Callable[[str], str]:
    """transformers name -> the tensor holding it (a tied lm_head is the input embedding)."""
    def source(key: str) -> str:
        if not src.has(key) and tied and key == "lm_head.weight":
            return "local_encoder.embed_tokens.weight"
        return key
    return source


def _check_files_match(plan: WeightPlan, src: HFTensors, source: Callable[[str], str], directory: Path) -> None:
    """Every tensor of the plan is in the files with the shape the config implies, and nothing
    else is, so the parameter count is what the config implies (the encoder's discarded
    cross-attention layers are the one known extra)."""
    for _, sources, _ in plan.items:
        for key, shape in sources:
            key = source(key)
            if not src.has(key):
                raise CheckpointError(f"{directory}: missing tensor {src.name(key)!r} "
                                      f"(needed by {CONFIG_NAME}; is this a BltForCausalLM checkpoint?)")
            got = src.shape(key)
            if got != shape:
                raise CheckpointError(f"{directory / src.where[src.name(key)]}: tensor {src.name(key)!r} has shape "
                                      f"{got}, {CONFIG_NAME} implies {shape}")
    used = {src.name(source(key)) for _, sources, _ in plan.items for key, _ in sources}
    extra = sorted(n for n in src.where if n not in used and not _UNUSED.match(n.removeprefix(src.prefix)))
    if extra:
        raise CheckpointError(f"{terminal_safe(directory / src.where[extra[0]])}: tensor {extra[0]!r} is not part of "
                              f"the model {CONFIG_NAME} describes ({len(extra)} such tensors)")


def _convert(plan: WeightPlan, src: HFTensors, source: Callable[[str], str], expected: dict[str, torch.Size],
             dtype: torch.dtype, directory: Path, progress: Progress | None) -> dict[str, torch.Tensor]:
    """Our state dict, read tensor by tensor in `dtype`; a checkpoint without a patcher gets a
    placeholder entropy model (zeros, norms of ones)."""
    state: dict[str, torch.Tensor] = {}
    total = len(expected)
    for ours, sources, fn in plan.items:
        t = fn(*[src.get(source(key), dtype) for key, _ in sources]).contiguous()
        if ours not in expected or t.shape != expected[ours]:  # pragma: no cover - a mapping bug
            raise CheckpointError(f"{directory}: internal mapping error for {ours!r}")
        state[ours] = t
        if progress is not None:
            progress(len(state), total, ours)
    for name in expected:
        if name not in state:
            if not name.startswith("entropy_model."):  # pragma: no cover - a mapping bug
                raise CheckpointError(f"{directory}: internal mapping error: nothing for {name!r}")
            fill = torch.ones if name.endswith("norm.weight") else torch.zeros
            state[name] = fill(expected[name], dtype=dtype)
            if progress is not None:
                progress(len(state), total, name)
    return state


def load_hf_model(path: str | os.PathLike, raw: dict, device: str | torch.device | None = None,
                  dtype: torch.dtype | None = None, progress: Progress | None = None) -> BLT:
    """A transformers BLT directory (config.json already read into `raw`) -> BLT in eval mode.

    Weights are converted to `dtype` (default float32) as they are read. `progress(done, total,
    name)` is called after each tensor of this project's model."""
    directory = Path(path).expanduser()
    where = str(directory / CONFIG_NAME)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where}: expected a JSON object")
    config = hf_config_to_blt(raw, where)
    src = HFTensors(directory)
    # the plan and the (meta) model grow with the layer counts: bound them by the files first
    check_layer_count(config, src.count(), directory)
    plan = plan_weights(raw, config, where)
    source = _source_names(src, bool(raw.get("tie_word_embeddings", False)))
    _check_files_match(plan, src, source, directory)
    target = dtype or torch.float32
    model = meta_model(config, directory / CONFIG_NAME)
    expected = {n: t.shape for n, t in model.state_dict().items()}
    check_weights_memory(expected, target, directory)
    model.load_state_dict(_convert(plan, src, source, expected, target, directory, progress), strict=True, assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):  # pragma: no cover
        raise CheckpointError(f"{directory}: internal error: tensors left unloaded")
    if device is not None:
        model.to(device)
    return model.eval()


__all__ = ["HF_MODEL_TYPE", "hf_config_to_blt", "is_hf_model_dir", "load_hf_model"]
