"""The weights of a transformers BLT directory: memory-mapped tensors from `model.safetensors`
or indexed shards, and the plan that maps them to this project's tensor names and layouts.

See `hf_compat` for the whole conversion. Names and layouts: q/k/v fused into `wqkv`, gate/up
into `w13`; the query/key rows of every rotary attention are permuted from transformers'
interleaved pairs (channels 2i, 2i+1) to the rotate-half layout used here (channels i, i + d/2),
which leaves q.k unchanged; grouped key/value heads are repeated to one per query head; the
fused hash n-gram table, the k-queries-per-patch projection, the projection to the global width
(when k x encoder width differs from it) and the decoder's cross-attention in every layer or the
first map one to one; the patcher becomes the entropy model.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..config import BLTConfig
from ..guards import read_regular_file, terminal_safe
from ..ids import VOCAB_SIZE
from .checkpoint import WEIGHTS_NAME, CheckpointError, open_safetensors, read_safetensors_shapes
from .hf_config import SubConfig, sub_configs

INDEX_NAME = "model.safetensors.index.json"
_MAX_INDEX_BYTES = 64 << 20  # an index lists tensor names; even huge models need a few MB
_CHUNK = 1 << 24  # elements per block when converting a large tensor's dtype
_ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


class HFTensors:
    """Memory-mapped access to the tensors of model.safetensors or of an indexed set of shards."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        single, index = directory / WEIGHTS_NAME, directory / INDEX_NAME
        if os.path.lexists(index):
            data = read_regular_file(index, _MAX_INDEX_BYTES, CheckpointError)
            try:
                weight_map = json.loads(data.decode("utf-8"))["weight_map"]
                if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
                    raise TypeError("weight_map is not an object of file names")
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, RecursionError) as e:
                raise CheckpointError(f"{terminal_safe(index)}: not a valid safetensors index ({e})") from None
            files = sorted(set(weight_map.values()))
            for f in files:
                _check_shard_name(directory, f, index)
        elif os.path.lexists(single):
            weight_map, files = None, [WEIGHTS_NAME]
        else:
            other = [n for n in ("pytorch_model.bin", "pytorch_model.bin.index.json") if (directory / n).exists()]
            hint = f" ({other[0]} is a pickle; blt-chat only loads safetensors)" if other else ""
            raise CheckpointError(f"{directory}: missing {WEIGHTS_NAME} (or {INDEX_NAME}){hint}")
        for f in files:
            if not os.path.lexists(directory / f):
                raise CheckpointError(f"{terminal_safe(directory / f)}: missing shard (listed in {INDEX_NAME})")
        self.handles: dict[str, Any] = {}  # opened (data mapped) on first read, after the checks
        self.where: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for f in files:
            for name, shape in read_safetensors_shapes(directory / f).items():
                if weight_map is None or weight_map.get(name) == f:
                    self.where[name] = f
                    self.shapes[name] = shape
        if weight_map is not None:
            lost = sorted(n for n in weight_map if n not in self.where)
            if lost:
                raise CheckpointError(f"{directory / weight_map[lost[0]]}: tensor {lost[0]!r} listed in "
                                      f"{INDEX_NAME} is not in it")
        self.prefix = "model." if any(n.startswith("model.") for n in self.where) else ""

    def count(self) -> int:
        return len(self.where)

    def name(self, key: str) -> str:
        return key if key == "lm_head.weight" else self.prefix + key

    def has(self, key: str) -> bool:
        return self.name(key) in self.where

    def shape(self, key: str) -> tuple[int, ...]:
        return self.shapes[self.name(key)]

    def _handle(self, f: str) -> Any:
        if f not in self.handles:
            self.handles[f] = open_safetensors(self.dir / f)
        return self.handles[f]

    def get(self, key: str, dtype: torch.dtype) -> torch.Tensor:
        """The tensor in `dtype`; a large one changing dtype is converted in row blocks, so the
        file's copy of it is never held whole next to the converted one."""
        name = self.name(key)
        try:
            h = self._handle(self.where[name])
            part = h.get_slice(name)
            shape = tuple(part.get_shape())
            numel = math.prod(shape)
            if numel <= _CHUNK or len(shape) == 0 or shape[0] < 2 or part.get_dtype() == _ST_DTYPES.get(dtype):
                return h.get_tensor(name).to(dtype)
            out = torch.empty(shape, dtype=dtype)
            rows = max(1, _CHUNK // (numel // shape[0]))
            for a in range(0, shape[0], rows):
                out[a: a + rows] = part[a: a + rows].to(dtype)
            return out
        except Exception as e:
            raise CheckpointError(f"{self.dir / self.where[name]}: cannot read tensor {name!r} ({e})") from None


def _check_shard_name(directory: Path, name: str, index: Path) -> None:
    """A shard must be a plain file name inside the model directory: checked before any file
    named by the index is touched, so an index cannot make the loader open /etc/passwd."""
    plain = (name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\0" not in name
             and not os.path.isabs(name))
    if not plain:
        raise CheckpointError(f"{terminal_safe(index)}: shard {terminal_safe(repr(name))} is not a plain file name "
                              "inside the model directory")
    real_dir = os.path.realpath(directory)
    if os.path.dirname(os.path.realpath(directory / name)) != real_dir:
        raise CheckpointError(f"{terminal_safe(index)}: shard {terminal_safe(repr(name))} is a link that leaves "
                              "the model directory")


def _rope_rows(w: torch.Tensor, heads: int) -> torch.Tensor:
    """q/k projection rows: interleaved rotary pairs (2i, 2i+1) -> rotate-half pairs (i, i + d/2)."""
    d = w.shape[0] // heads
    perm = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])
    return w.view(heads, d, -1)[:, perm].reshape(heads * d, -1)


def _repeat_kv(w: torch.Tensor, kv_heads: int, heads: int) -> torch.Tensor:
    """Grouped key/value heads -> one per query head (query head h uses kv head h // group)."""
    if kv_heads == heads:
        return w
    d = w.shape[0] // kv_heads
    return w.view(kv_heads, d, -1).repeat_interleave(heads // kv_heads, dim=0).reshape(heads * d, -1)


class WeightPlan:
    """Our tensor name -> (source tensors with expected shapes, how to combine them)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, list[tuple[str, tuple[int, ...]]], Callable[..., torch.Tensor]]] = []

    def add(self, ours: str, sources: list[tuple[str, tuple[int, ...]]], fn: Callable[..., torch.Tensor] | None = None) -> None:
        self.items.append((ours, sources, fn or (lambda t: t)))

    def stack(self, ours: str, theirs: str, sub: SubConfig, rotary: bool = True) -> None:
        D, H, kv, d, F = sub.hidden, sub.heads, sub.kv_heads, sub.head_dim, sub.ffn
        for i in range(sub.layers):
            o, t = f"{ours}.layers.{i}", f"{theirs}.layers.{i}"

            def qkv(q, k, v, H=H, kv=kv):
                k = _repeat_kv(k, kv, H)
                if rotary:
                    q, k = _rope_rows(q, H), _rope_rows(k, H)
                return torch.cat([q, k, _repeat_kv(v, kv, H)], 0)

            self.add(f"{o}.attn_norm.weight", [(f"{t}.input_layernorm.weight", (D,))])
            self.add(f"{o}.attn.wqkv.weight", [(f"{t}.self_attn.q_proj.weight", (H * d, D)),
                                               (f"{t}.self_attn.k_proj.weight", (kv * d, D)),
                                               (f"{t}.self_attn.v_proj.weight", (kv * d, D))], qkv)
            self.add(f"{o}.attn.wo.weight", [(f"{t}.self_attn.o_proj.weight", (D, H * d))])
            self.add(f"{o}.ffn_norm.weight", [(f"{t}.post_attention_layernorm.weight", (D,))])
            self.add(f"{o}.ffn.w13.weight", [(f"{t}.mlp.gate_proj.weight", (F, D)), (f"{t}.mlp.up_proj.weight", (F, D))],
                     lambda g, u: torch.cat([g, u], 0))
            self.add(f"{o}.ffn.w2.weight", [(f"{t}.mlp.down_proj.weight", (D, F))])

    def cross(self, ours: str, theirs: str, sub: SubConfig) -> None:
        D, H, kv, d = sub.hidden, sub.heads, sub.kv_heads, sub.head_dim
        self.add(f"{ours}.q_norm.weight", [(f"{theirs}.q_norm.weight", (D,))])
        self.add(f"{ours}.kv_norm.weight", [(f"{theirs}.k_norm.weight", (D,))])
        self.add(f"{ours}.wq.weight", [(f"{theirs}.q_proj.weight", (H * d, D))])
        self.add(f"{ours}.wk.weight", [(f"{theirs}.k_proj.weight", (kv * d, D))], lambda w: _repeat_kv(w, kv, H))
        self.add(f"{ours}.wv.weight", [(f"{theirs}.v_proj.weight", (kv * d, D))], lambda w: _repeat_kv(w, kv, H))
        self.add(f"{ours}.wo.weight", [(f"{theirs}.o_proj.weight", (D, H * d))])


def plan_weights(raw: dict, config: BLTConfig, where: str) -> WeightPlan:
    enc, dec, glob, pat = sub_configs(raw, where)
    c, p = config, WeightPlan()
    D, k, Dg = c.hidden_size, c.cross_attn_k, c.effective_global_hidden_size
    if raw.get("patch_in_forward", True):
        De = pat.hidden
        p.add("entropy_model.embed.weight", [("patcher.embed_tokens.weight", (VOCAB_SIZE, De))])
        p.stack("entropy_model.stack", "patcher", pat)
        p.add("entropy_model.norm.weight", [("patcher.norm.weight", (De,))])
        p.add("entropy_model.head.weight", [("patcher.lm_head.weight", (VOCAB_SIZE, De))])
    tables = c.ngram_hash_functions * len(c.ngram_sizes) * c.ngram_vocab_size
    p.add("encoder.embed.weight", [("local_encoder.embed_tokens.weight", (VOCAB_SIZE, D))])
    p.add("encoder.hash_embed.table.weight", [("encoder_hash_tok_embedding.weight", (tables, D))])
    p.stack("encoder.stack", "local_encoder", enc)
    p.add("encoder.pool_proj.weight", [("local_encoder.patch_embedding_projection.weight", (k * D, D))])
    pool = enc.layers - 1 if enc["cross_attn_all_layers"] else 0  # the only one whose result is kept
    p.cross("encoder.pool_attn", f"local_encoder.cross_attn_layers.{pool}", enc)
    if k * D != Dg:
        p.add("encoder.to_global.weight", [("global_transformer.token_embedding_projection.weight", (Dg, k * D))])
    p.stack("global_model.stack", "global_transformer", glob)
    p.add("decoder.latent_proj.weight", [("local_decoder.patch_embedding_projection.weight", (k * D, Dg))])
    p.stack("decoder.stack", "local_decoder", dec)
    for i in range(dec.layers if dec["cross_attn_all_layers"] else 1):
        p.cross(f"decoder.cross.{i}", f"local_decoder.cross_attn_layers.{i}", dec)
    p.add("decoder.norm.weight", [("local_decoder.norm.weight", (D,))])
    p.add("decoder.head.weight", [("lm_head.weight", (VOCAB_SIZE, D))])
    return p


__all__ = ["INDEX_NAME", "HFTensors", "WeightPlan", "plan_weights"]
