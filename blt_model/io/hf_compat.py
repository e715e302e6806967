"""Meta's released BLT weights in the Hugging Face transformers format (`BltForCausalLM`).

A transformers directory holds `config.json` with `"model_type": "blt"` and the weights in
`model.safetensors`, or in shards listed by `model.safetensors.index.json`. `load_hf_model`
turns it into this project's `BLT`, whose outputs match transformers' implementation:

- names and layouts: q/k/v fused into `wqkv`, gate/up into `w13`; the query/key rows of every
  rotary attention are permuted from transformers' interleaved pairs (channels 2i, 2i+1) to the
  rotate-half layout used here (channels i, i + d/2), which leaves q.k unchanged; grouped
  key/value heads are repeated to one per query head; the fused hash n-gram table, the
  k-queries-per-patch projection, the projection to the global width (when k x encoder width
  differs from it) and the decoder's cross-attention in every layer or the first map one to one;
  the patcher becomes the entropy model.
- behaviour: the converted config sets the `BLTConfig` fields that reproduce transformers
  (`cross_attn_double_residual`, `global_final_norm=False`, `last_position_continues_patch`,
  per-component rotary bases and widths); the global entropy threshold and `max_patch_length`
  become the patching defaults, windows come from `local_attention_window_len` and the
  patcher's `sliding_window` (None: no window, i.e. a window as long as the context).
- transformers' local encoder recomputes the pooled patches from scratch at every layer that
  has cross-attention and keeps only the last layer's result, so with `cross_attn_all_layers`
  the encoder is equivalent to one pooling step with its last cross-attention module; the others
  are never used and are not loaded.

Tensors are read from memory-mapped safetensors one at a time and converted straight into the
requested dtype, so a checkpoint needs little more memory than the loaded model. Model code does
no printing: pass `progress(done, total, name)` to watch the load. No transformers import.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..config import BLTConfig
from ..guards import read_regular_file, terminal_safe
from ..ids import VOCAB_SIZE
from ..nn.model import BLT
from .checkpoint import (
    CheckpointError,
    check_layer_count,
    check_weights_memory,
    meta_model,
    open_safetensors,
    read_config,
    read_safetensors_shapes,
)

HF_MODEL_TYPE = "blt"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"

Progress = Callable[[int, int, str], None]
_MAX_INDEX_BYTES = 64 << 20  # an index lists tensor names; even huge models need a few MB
_CHUNK = 1 << 24
_UNUSED = re.compile(r"local_encoder\.cross_attn_layers\.\d+\.")  # elements per block when converting a large tensor's dtype
_ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}

# transformers' defaults for keys a config.json may leave out (BltConfig and its sub-configs)
_TOP_DEFAULTS: dict[str, Any] = dict(
    vocab_size=260, patch_in_forward=True, patch_size=4, patching_mode="entropy",
    patching_threshold=1.335442066192627, max_patch_length=None, local_attention_window_len=512,
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


# --- config ----------------------------------------------------------------------------------------

class _Sub:
    """One sub-config (encoder, decoder, global, patcher) with transformers' defaults."""

    def __init__(self, raw: dict, name: str, where: str) -> None:
        d = raw.get(name)
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise CheckpointError(f"{where}: {name} must be a JSON object, got {type(d).__name__}")
        self.name, self.where = name, where
        self.d = {**_SUB_DEFAULTS[name], **{k: v for k, v in d.items() if v is not None or k in ("sliding_window",)}}
        for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                    "num_key_value_heads"):
            v = self.d.get(key)
            if v is None and key in ("intermediate_size", "num_key_value_heads"):
                continue  # computed / defaulted below
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if key == "num_hidden_layers" else 1):
                low = 0 if key == "num_hidden_layers" else 1
                raise CheckpointError(f"{where}: {name}.{key} must be an integer >= {low}, got {v!r}")
        if name == "encoder_config" and self.d.get("intermediate_size") is None:
            self.d["intermediate_size"] = int(8 * self.hidden / 3)
        heads = self.heads
        if self.hidden % heads:
            raise CheckpointError(f"{where}: {name}.num_attention_heads {heads} does not divide hidden_size {self.hidden}")
        kv = self.d.get("num_key_value_heads") or heads
        if heads % kv:
            raise CheckpointError(f"{where}: {name}.num_key_value_heads {kv} does not divide num_attention_heads {heads}")
        self.kv_heads = kv
        act = self.d.get("hidden_act", "silu")
        if name != "patcher_config" and act != "silu":  # transformers forces silu in the patcher
            raise CheckpointError(f"{where}: {name}.hidden_act {act!r} is not supported (only 'silu', SwiGLU)")

    def __getitem__(self, key: str) -> Any:
        return self.d[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.d.get(key, default)

    @property
    def hidden(self) -> int:
        return int(self.d["hidden_size"])

    @property
    def heads(self) -> int:
        return int(self.d["num_attention_heads"])

    @property
    def layers(self) -> int:
        return int(self.d["num_hidden_layers"])

    @property
    def ffn(self) -> int:
        return int(self.d["intermediate_size"])

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
        if kind != "default":
            raise CheckpointError(f"{self.where}: {self.name} rotary type {kind!r} is not supported (only 'default')")
        return float(theta)


def hf_config_to_blt(raw: dict, where: str = CONFIG_NAME) -> BLTConfig:
    """A transformers BltConfig (as a config.json dict) -> the BLTConfig that reproduces it."""
    mt = raw.get("model_type")
    if mt != HF_MODEL_TYPE:
        raise CheckpointError(f"{where}: transformers model type {mt!r} is not supported "
                              f"(blt-chat loads model_type {HF_MODEL_TYPE!r}, BltForCausalLM)")
    top = {**_TOP_DEFAULTS, **{k: v for k, v in raw.items() if k in _TOP_DEFAULTS}}
    enc = _Sub(raw, "encoder_config", where)
    dec = _Sub(raw, "decoder_config", where)
    glob = _Sub(raw, "global_config", where)
    pat = _Sub(raw, "patcher_config", where)

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise CheckpointError(f"{where}: {msg}")

    need(top["vocab_size"] == VOCAB_SIZE and enc.get("vocab_size", VOCAB_SIZE) == VOCAB_SIZE
         and pat.get("vocab_size", VOCAB_SIZE) == VOCAB_SIZE, f"vocab_size must be {VOCAB_SIZE} (the BLT byte ids)")
    need(enc.hidden == dec.hidden, f"encoder hidden_size {enc.hidden} != decoder hidden_size {dec.hidden} "
         "(the decoder starts from the encoder's byte states)")
    need(enc.heads == dec.heads, f"encoder and decoder num_attention_heads differ ({enc.heads} vs {dec.heads}); not supported")
    need(enc.layers >= 1, "encoder_config.num_hidden_layers must be >= 1 (transformers pools after its last layer)")
    need(dec.layers >= 1, "decoder_config.num_hidden_layers must be >= 1")
    k = top["cross_attn_k"]
    need(enc["cross_attn_k"] == k and dec["cross_attn_k"] == k,
         f"cross_attn_k differs between the config ({k}), encoder ({enc['cross_attn_k']}) and decoder ({dec['cross_attn_k']})")
    need(dec["hidden_size_global"] == glob.hidden,
         f"decoder_config.hidden_size_global {dec['hidden_size_global']} != global_config.hidden_size {glob.hidden}")
    eps = {float(s["rms_norm_eps"]) for s in (enc, dec, glob, pat)}
    need(len(eps) == 1, f"rms_norm_eps differs between components ({sorted(eps)}); not supported")
    theta_enc, theta_dec = enc.rope_theta(), dec.rope_theta()
    need(theta_enc == theta_dec, f"encoder and decoder rotary bases differ ({theta_enc} vs {theta_dec}); not supported")
    theta_glob, theta_pat = glob.rope_theta(), pat.rope_theta()

    max_pos = int(max(enc.get("max_position_embeddings", 24576), dec.get("max_position_embeddings", 24576)))
    window = top["local_attention_window_len"]
    window = max_pos if window is None else int(window)
    pat_window = pat.get("sliding_window")
    pat_window = max_pos if pat_window is None else int(pat_window)

    sizes = top["encoder_hash_byte_group_size"] or [3, 4, 5, 6, 7, 8]
    threshold = top["patching_threshold"]
    uses_patcher = top["patching_mode"] == "entropy" and bool(top["patch_in_forward"])
    # Where the last position reads: transformers' patcher ends its patch lengths with an empty
    # patch when H_{T-1} > threshold, so the last position reads its own patch as here; but
    # splitting the lengths at max_patch_length drops empty patches, and then (as with the
    # patcher's one-byte patches without a patch_size) the last position reads the patch before.
    if uses_patcher and top["patch_size"] is not None:
        need(threshold is not None, "patching_threshold is null; the entropy patcher needs one")
        patching = dict(patching_scheme="entropy", max_patch_size=top["max_patch_length"],
                        last_position_continues_patch=top["max_patch_length"] is not None)
    else:  # transformers then makes every byte its own patch
        patching = dict(patching_scheme="fixed", patch_stride=1, max_patch_size=None,
                        last_position_continues_patch=uses_patcher)
    if threshold is None:
        threshold = 1.335442066192627
    if top["patch_in_forward"]:
        ent = dict(entropy_model_layers=pat.layers, entropy_hidden_size=pat.hidden,
                   entropy_num_heads=pat.heads, entropy_intermediate_size=pat.ffn,
                   entropy_context_size=pat_window,
                   entropy_rope_theta=None if theta_pat == theta_enc else theta_pat)
    else:  # no patcher stored: a minimal placeholder entropy model (fixed patching never runs it)
        ent = dict(entropy_model_layers=1, entropy_hidden_size=8, entropy_num_heads=1,
                   entropy_intermediate_size=8, entropy_context_size=window)
    fields = dict(
        hidden_size=enc.hidden, intermediate_size=enc.ffn, num_heads=enc.heads,
        encoder_layers=enc.layers, decoder_layers=dec.layers, window_size=window,
        decoder_intermediate_size=None if dec.ffn == enc.ffn else dec.ffn,
        global_layers=glob.layers, global_hidden_size=glob.hidden, global_intermediate_size=glob.ffn,
        global_num_heads=glob.heads, max_position_embeddings=max_pos,
        attention_dropout=0.0, resid_dropout=0.0,
        ngram_vocab_size=int(top["encoder_hash_byte_group_vocab"]), ngram_sizes=[int(n) for n in sizes],
        ngram_hash_functions=int(top["encoder_hash_byte_group_nb_functions"]),
        cross_attn_k=int(k), decoder_memory_patches=1, decoder_gate=False,
        cross_attn_all_layers_decoder=bool(dec["cross_attn_all_layers"]),
        entropy_threshold=float(threshold), initial_entropy_threshold=float(threshold),
        use_monotonic=False, min_patch_size=1, reset_context=False,
        rope_theta=theta_enc, global_rope_theta=None if theta_glob == theta_enc else theta_glob,
        norm_eps=eps.pop(), cross_attn_double_residual=True, global_final_norm=False,
        **ent, **patching)
    try:
        return BLTConfig(**fields)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{where}: cannot be expressed as a blt-chat model ({e})") from None


# --- tensors ---------------------------------------------------------------------------------------

class _Tensors:
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


class _Plan:
    """Our tensor name -> (source tensors with expected shapes, how to combine them)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, list[tuple[str, tuple[int, ...]]], Callable[..., torch.Tensor]]] = []

    def add(self, ours: str, sources: list[tuple[str, tuple[int, ...]]], fn: Callable[..., torch.Tensor] | None = None) -> None:
        self.items.append((ours, sources, fn or (lambda t: t)))

    def stack(self, ours: str, theirs: str, sub: _Sub, rotary: bool = True) -> None:
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

    def cross(self, ours: str, theirs: str, sub: _Sub) -> None:
        D, H, kv, d = sub.hidden, sub.heads, sub.kv_heads, sub.head_dim
        self.add(f"{ours}.q_norm.weight", [(f"{theirs}.q_norm.weight", (D,))])
        self.add(f"{ours}.kv_norm.weight", [(f"{theirs}.k_norm.weight", (D,))])
        self.add(f"{ours}.wq.weight", [(f"{theirs}.q_proj.weight", (H * d, D))])
        self.add(f"{ours}.wk.weight", [(f"{theirs}.k_proj.weight", (kv * d, D))], lambda w: _repeat_kv(w, kv, H))
        self.add(f"{ours}.wv.weight", [(f"{theirs}.v_proj.weight", (kv * d, D))], lambda w: _repeat_kv(w, kv, H))
        self.add(f"{ours}.wo.weight", [(f"{theirs}.o_proj.weight", (D, H * d))])


def _plan(raw: dict, config: BLTConfig, where: str) -> _Plan:
    enc = _Sub(raw, "encoder_config", where)
    dec = _Sub(raw, "decoder_config", where)
    glob = _Sub(raw, "global_config", where)
    pat = _Sub(raw, "patcher_config", where)
    c, p = config, _Plan()
    D, k, Dg = c.hidden_size, c.cross_attn_k, c.g_hidden
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
    src = _Tensors(directory)
    # the plan and the (meta) model grow with the layer counts: bound them by the files first
    check_layer_count(config, src.count(), directory)
    plan = _plan(raw, config, where)
    tied = bool(raw.get("tie_word_embeddings", False))

    def source(key: str) -> str:
        if not src.has(key) and tied and key == "lm_head.weight":
            return "local_encoder.embed_tokens.weight"
        return key

    for _, sources, _ in plan.items:  # every tensor present with the shape the config implies
        for key, shape in sources:
            key = source(key)
            if not src.has(key):
                raise CheckpointError(f"{directory}: missing tensor {src.name(key)!r} "
                                      f"(needed by {CONFIG_NAME}; is this a BltForCausalLM checkpoint?)")
            got = src.shape(key)
            if got != shape:
                raise CheckpointError(f"{directory / src.where[src.name(key)]}: tensor {src.name(key)!r} has shape "
                                      f"{got}, {CONFIG_NAME} implies {shape}")
    # nothing else in the files, so the parameter count is what the config implies (the encoder's
    # cross-attention layers whose results transformers discards are the one known extra)
    used = {src.name(source(key)) for _, sources, _ in plan.items for key, _ in sources}
    extra = sorted(n for n in src.where if n not in used and not _UNUSED.match(n.removeprefix(src.prefix)))
    if extra:
        raise CheckpointError(f"{terminal_safe(directory / src.where[extra[0]])}: tensor {extra[0]!r} is not part of "
                              f"the model {CONFIG_NAME} describes ({len(extra)} such tensors)")
    target = dtype or torch.float32
    model = meta_model(config, directory / CONFIG_NAME)
    expected = {n: t.shape for n, t in model.state_dict().items()}
    check_weights_memory(expected, target, directory)
    state: dict[str, torch.Tensor] = {}
    total = len(expected)
    for ours, sources, fn in plan.items:
        tensors = [src.get(source(key), target) for key, _ in sources]
        t = fn(*tensors).contiguous()
        if ours not in expected or t.shape != expected[ours]:  # pragma: no cover - a mapping bug
            raise CheckpointError(f"{directory}: internal mapping error for {ours!r}")
        state[ours] = t
        if progress is not None:
            progress(len(state), total, ours)
    for name in expected:  # only the placeholder entropy model of a checkpoint without a patcher
        if name not in state:
            if not name.startswith("entropy_model."):  # pragma: no cover - a mapping bug
                raise CheckpointError(f"{directory}: internal mapping error: nothing for {name!r}")
            fill = torch.ones if name.endswith("norm.weight") else torch.zeros
            state[name] = fill(expected[name], dtype=target)
            if progress is not None:
                progress(len(state), total, name)
    model.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):  # pragma: no cover
        raise CheckpointError(f"{directory}: internal error: tensors left unloaded")
    if device is not None:
        model.to(device)
    return model.eval()


__all__ = ["HF_MODEL_TYPE", "hf_config_to_blt", "is_hf_model_dir", "load_hf_model"]
