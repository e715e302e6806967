"""blt_model: a Byte Latent Transformer in PyTorch. Bytes in, no tokenizer."""

from .attention import CrossAttention, SelfAttention, lambda_init_schedule, window_mask
from .config import PRESETS, BLTConfig, PatchingConfig
from .entropy_model import EntropyModel, entropy_of_logits
from .global_transformer import GlobalTransformer
from .hashing import HashNgramEmbedding, ngram_hash
from .ids import BOE_ID, BOS_ID, EOS_ID, OFFSET, PAD_ID, VOCAB_SIZE, decode, decode_text, encode
from .layers import RMSNorm, SwiGLU, apply_rotary, rotary_cos_sin
from .local_decoder import LocalDecoder
from .local_encoder import LocalEncoder
from .model import BLT, bits_per_byte, lm_loss
from .patching import (
    OnlinePatcher,
    calibrate_threshold,
    lengths_to_starts,
    patch_starts,
    starts_to_lengths,
    starts_to_patch_ids,
)

__all__ = [
    "BLT", "BLTConfig", "PatchingConfig", "PRESETS", "EntropyModel", "LocalEncoder", "LocalDecoder",
    "GlobalTransformer", "HashNgramEmbedding", "SelfAttention", "CrossAttention", "RMSNorm", "SwiGLU",
    "apply_rotary", "rotary_cos_sin", "lambda_init_schedule", "window_mask", "ngram_hash",
    "entropy_of_logits", "lm_loss", "bits_per_byte", "patch_starts", "starts_to_lengths",
    "starts_to_patch_ids", "lengths_to_starts", "calibrate_threshold", "OnlinePatcher",
    "encode", "decode", "decode_text", "BOE_ID", "BOS_ID", "EOS_ID", "PAD_ID", "OFFSET", "VOCAB_SIZE",
]

try:  # modules written alongside; importable once present
    from .checkpoint import CheckpointError, load_model, save_model  # noqa: F401

    __all__ += ["CheckpointError", "load_model", "save_model"]
except ImportError:  # pragma: no cover
    pass
