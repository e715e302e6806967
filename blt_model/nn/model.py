"""The Byte Latent Transformer: entropy model + local encoder + global transformer + local decoder
(docs/architecture.md section 3: the data flow from bytes to logits, with the paper's names)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BLTConfig, PatchingConfig
from ..ids import BOE_ID
from ..patching import lengths_to_starts, patch_starts, starts_to_lengths, starts_to_patch_ids
from .entropy_model import EntropyModel
from .global_transformer import GlobalTransformer
from .local_decoder import LocalDecoder
from .local_encoder import LocalEncoder


class BLT(nn.Module):
    """model(ids) -> logits [B, T, 260]; logits[:, t] predicts id t + 1."""

    def __init__(self, config: BLTConfig) -> None:
        super().__init__()
        self.config = config
        self.entropy_model = EntropyModel(config)
        self.encoder = LocalEncoder(config)
        self.global_model = GlobalTransformer(config)
        self.decoder = LocalDecoder(config)
        self.entropy_frozen = False
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    # --- entropy model handling -------------------------------------------------------
    def freeze_entropy_model(self, frozen: bool = True) -> None:
        """Stage 2 of training: the entropy model stays fixed (no grads, eval mode)."""
        self.entropy_frozen = frozen
        self.entropy_model.requires_grad_(not frozen)
        if frozen:
            self.entropy_model.eval()

    def train(self, mode: bool = True) -> BLT:
        super().train(mode)
        if self.entropy_frozen:
            self.entropy_model.eval()
        return self

    # --- patching ---------------------------------------------------------------------
    def patch_starts(self, ids: torch.Tensor, patch_config: PatchingConfig | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ids: [B, T] -> (starts Bool[B, T + 1], entropies Float[B, T] or None)."""
        cfg = patch_config or self.config.patching
        ent = None
        if cfg.needs_entropies:
            with torch.no_grad():
                ent = self.entropy_model.entropies(ids, reset_context=cfg.reset_context)
        return patch_starts(ids, ent, cfg), ent

    def patch(self, ids: torch.Tensor, patch_config: PatchingConfig | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ids: [B, T] -> (patch lengths Long[B, P] right-padded with 0, entropies or None)."""
        ids = self._check_ids(ids)
        starts, ent = self.patch_starts(ids, patch_config)
        return starts_to_lengths(starts[:, : ids.shape[1]]), ent

    def _check_ids(self, ids: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(ids):
            ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.dim() == 1:
            ids = ids[None]
        if ids.dim() != 2 or ids.shape[1] == 0:
            raise ValueError(f"ids: expected a non-empty [batch, length] tensor, got shape {tuple(ids.shape)}")
        if ids.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"ids: expected integer ids, got {ids.dtype}")
        if bool(((ids < 0) | (ids >= self.config.vocab_size)).any()):
            raise ValueError(f"ids: values must be in [0, {self.config.vocab_size}), got min {int(ids.min())} max {int(ids.max())}")
        return ids.long()

    # --- forward ----------------------------------------------------------------------
    def forward(self, ids: torch.Tensor, patch_config: PatchingConfig | None = None,
                patch_lengths: torch.Tensor | None = None, starts: torch.Tensor | None = None) -> torch.Tensor:
        """ids: [B, T] -> logits [B, T, 260].

        Patch boundaries come from (first given wins): `starts` Bool[B, T + 1] (column T: does
        the next position start a patch), `patch_lengths` [B, P] summing to T (the next
        position continues the last patch) or to T + 1 (the last length-1 patch is the next
        position), or the patcher with `patch_config` (default: the model's own).
        """
        ids = self._check_ids(ids)
        B, T = ids.shape
        if starts is None and patch_lengths is not None:
            pl = torch.as_tensor(patch_lengths, device=ids.device).long()
            if pl.dim() == 1:
                pl = pl[None]
            # lengths over T + 1 positions already say whether the next one starts a patch
            total = T + 1 if int(pl.sum(-1).max()) == T + 1 else T
            starts = lengths_to_starts(pl, total)  # raises unless every row sums to `total`
            if total == T:  # the next position continues the last patch
                starts = torch.cat([starts, starts.new_zeros(pl.shape[0], 1)], 1)
            if starts.shape[0] != B:
                starts = starts.expand(B, -1)
        if starts is None:
            starts, _ = self.patch_starts(ids, patch_config)
        if starts.shape != (B, T + 1):
            raise ValueError(f"starts: expected shape {(B, T + 1)}, got {tuple(starts.shape)}")
        starts = starts.clone()
        starts[:, 0] = True
        if T >= 1:
            starts[:, 1] = True
        if self.config.last_position_continues_patch and T >= 2:
            starts[:, T] = False  # the prediction at T - 1 reads as if position T continued its patch
        pid = starts_to_patch_ids(starts)  # [B, T + 1]
        P = int(pid[:, T - 1].max().item()) + 1
        h = self.encoder(ids)  # [B, T, D]
        patches = self.encoder.pool(h, pid[:, :T], P)  # [B, P, Dg]
        latents = self.global_model(patches)  # [B, P, Dg]
        read = pid[:, 1:] - 1  # [B, T]: latest patch each position may read
        mem = self.decoder.memory_kv(latents)
        key_patch = torch.arange(P, device=ids.device).repeat_interleave(self.decoder.k)
        return self.decoder(h, read, mem, key_patch)

    # --- accounting -------------------------------------------------------------------
    def parameter_breakdown(self) -> dict[str, int]:
        def count(m: nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())

        hash_p = count(self.encoder.hash_embed)
        out = {
            "entropy_model": count(self.entropy_model),
            "hash_embeddings": hash_p,
            "local_encoder": count(self.encoder) - hash_p,
            "global": count(self.global_model),
            "local_decoder": count(self.decoder),
        }
        out["total"] = sum(out.values())
        return out

    def num_parameters(self, include_embeddings: bool = True) -> int:
        b = self.parameter_breakdown()
        if include_embeddings:
            return b["total"]
        emb = (self.encoder.embed.weight.numel() + self.entropy_model.embed.weight.numel() + b["hash_embeddings"])
        return b["total"] - emb

    def flops_per_byte(self, mean_patch_size: float, context_bytes: int | None = None) -> float:
        """Approximate inference FLOPs per byte (2 per multiply-add of every matrix, plus
        attention scores and mixing over the attended context)."""
        c = self.config
        ctx = context_bytes or c.max_position_embeddings

        def mat(m: nn.Module) -> int:
            return sum(p.numel() for n, p in m.named_parameters() if p.dim() == 2 and "embed" not in n and "table" not in n)

        def attn(layers: int, dim: int, context: float) -> float:
            return 4.0 * layers * dim * context

        eps = mean_patch_size
        ent = 2 * mat(self.entropy_model) + attn(c.entropy_model_layers, c.entropy_hidden_size, min(c.entropy_context_size, ctx))
        enc_pool = mat(self.encoder.pool_proj) + mat(self.encoder.pool_attn) + mat(self.encoder.to_global)
        enc = 2 * (mat(self.encoder) - enc_pool) + attn(c.encoder_layers, c.hidden_size, min(c.window_size, ctx))
        pool = (2 * enc_pool + 4.0 * c.hidden_size * c.cross_attn_k * eps) / eps
        glob = (2 * mat(self.global_model) + attn(c.global_layers, c.effective_global_hidden_size, ctx / eps / 2)) / eps
        dec_lat = mat(self.decoder.latent_proj) / eps
        dec = 2 * (mat(self.decoder) - mat(self.decoder.latent_proj) + dec_lat) + attn(
            c.decoder_layers, c.hidden_size, min(c.window_size, ctx))
        return float(ent + enc + pool + glob + dec)


def lm_loss(logits: torch.Tensor, ids: torch.Tensor, reduction: str = "mean") -> tuple[torch.Tensor, int]:
    """Next-id cross-entropy in nats. Targets ids[:, 1:]; padding targets (BOE, id 0) are ignored.

    Returns (loss, number of scored targets); reduction "sum" returns the summed loss.
    """
    targets = ids[:, 1:]
    lg = logits[:, :-1].float()
    n = int((targets != BOE_ID).sum().item())
    loss = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), targets.reshape(-1), ignore_index=BOE_ID, reduction="sum")
    if reduction == "sum":
        return loss, n
    return loss / max(n, 1), n


def bits_per_byte(loss_nats: float) -> float:
    return loss_nats / math.log(2)
