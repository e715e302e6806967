"""Test helpers shared across the suite: tiny configs and a threshold that splits entropies."""

from __future__ import annotations

import torch

from blt_model import BLT, BLTConfig, calibrate_threshold, encode

TINY = dict(
    hidden_size=32, intermediate_size=64, num_heads=2, encoder_layers=1, decoder_layers=2,
    global_hidden_size=64, global_intermediate_size=128, global_num_heads=2, global_layers=1,
    entropy_model_layers=1, entropy_hidden_size=32, entropy_num_heads=2, entropy_intermediate_size=64,
    ngram_vocab_size=64, cross_attn_k=2, window_size=16, entropy_context_size=16,
    max_position_embeddings=512,
)

SAMPLE_TEXT = (
    "It was the best of times, it was the worst of times; héllo wörld! 12345 -- "
    "naïve café\n  tabs\tand   spaces, \u4e2d\u6587 text.\n"
)


def tiny_config(**overrides) -> BLTConfig:
    """A BLT small enough for property tests; overrides change any field."""
    return BLTConfig(**{**TINY, **overrides})


def tiny_model(seed: int = 0, calibrate: bool = True, **overrides) -> BLT:
    """A random-weight tiny BLT whose entropy threshold sits at the median entropy of a
    sample text, so the entropy scheme gives a real mix of patch starts."""
    torch.manual_seed(seed)
    model = BLT(tiny_config(**overrides)).eval()
    if calibrate:
        ids = torch.tensor([encode(SAMPLE_TEXT * 2)])
        ent = model.entropy_model.entropies(ids)
        model.config.set_calibrated_threshold(calibrate_threshold(ent, 2.0))
        diffs = (ent[:, 1:] - ent[:, :-1]).flatten()
        model.config.patching.monotonic_threshold = float(diffs.quantile(0.6))
    return model
