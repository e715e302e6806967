"""blt_model: a Byte Latent Transformer in PyTorch. Bytes in, no tokenizer.

The public API is what this module exports; the subpackages below it are:
`nn` (the network), `patching` (where patches start), `inference` (sampling and generation),
`io` (checkpoints, transformers import, the shipped model), `train` (data, training,
evaluation) and `cli` (the `blt` command, the only part that prints). docs/architecture.md maps
them to the paper.
"""

from .config import PRESETS, BLTConfig, PatchingConfig
from .ids import BOE_ID, BOS_ID, EOS_ID, OFFSET, PAD_ID, VOCAB_SIZE, decode, decode_text, encode
from .inference.generation import ByteEvent, generate_stream, generate_text
from .inference.samples import generate_samples
from .inference.sampling import SamplingConfig
from .io.checkpoint import CheckpointError, load_model, save_model
from .io.shipped import SHIPPED_MODEL_NAME, shipped_model_path
from .nn.attention import CrossAttention, SelfAttention, lambda_init_schedule, window_mask
from .nn.entropy_model import EntropyModel, entropy_of_logits
from .nn.global_transformer import GlobalTransformer
from .nn.hashing import HashNgramEmbedding, ngram_hash
from .nn.layers import RMSNorm, SwiGLU, apply_rotary, rotary_cos_sin
from .nn.local_decoder import LocalDecoder
from .nn.local_encoder import LocalEncoder
from .nn.model import BLT, bits_per_byte, lm_loss
from .patching import (
    OnlinePatcher,
    calibrate_threshold,
    lengths_to_starts,
    patch_starts,
    starts_to_lengths,
    starts_to_patch_ids,
)
from .train.evaluation import compressor_bits_per_byte, compute_bits_per_byte

__all__ = [
    "BLT", "BLTConfig", "PatchingConfig", "PRESETS", "EntropyModel", "LocalEncoder", "LocalDecoder",
    "GlobalTransformer", "HashNgramEmbedding", "SelfAttention", "CrossAttention", "RMSNorm", "SwiGLU",
    "apply_rotary", "rotary_cos_sin", "lambda_init_schedule", "window_mask", "ngram_hash",
    "entropy_of_logits", "lm_loss", "bits_per_byte", "patch_starts", "starts_to_lengths",
    "starts_to_patch_ids", "lengths_to_starts", "calibrate_threshold", "OnlinePatcher",
    "encode", "decode", "decode_text", "BOE_ID", "BOS_ID", "EOS_ID", "PAD_ID", "OFFSET", "VOCAB_SIZE",
    "CheckpointError", "load_model", "save_model", "SHIPPED_MODEL_NAME", "shipped_model_path",
    "ByteEvent", "SamplingConfig", "generate_stream", "generate_text", "generate_samples", "compute_bits_per_byte", "compressor_bits_per_byte",
]
