"""How tests/blt_model/data/checkpoint_v1_* were made: run at commit 5abe862 (config format v1,
flat patching fields), from a worktree of that commit:

    git worktree add /tmp/oldmain 5abe862
    cd /tmp/oldmain && PYTHONPATH=/tmp/oldmain python /path/to/this/file OUT_DIR

It needs the code of that commit (BLTConfig with flat patching keys); with today's code the
stored files are the reference, and test_stored_checkpoint.py checks they still load and give
the same logits.
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from blt_model import BLT, BLTConfig, calibrate_threshold, encode, save_model

TINY = dict(
    hidden_size=16, intermediate_size=32, num_heads=2, encoder_layers=1, decoder_layers=2,
    global_hidden_size=32, global_intermediate_size=48, global_num_heads=2, global_layers=1,
    entropy_model_layers=1, entropy_hidden_size=16, entropy_num_heads=2, entropy_intermediate_size=32,
    ngram_vocab_size=64, ngram_sizes=[3, 4, 5], cross_attn_k=2, window_size=16, entropy_context_size=16,
    max_position_embeddings=256,
)
TEXT = "The quick brown fox, naïve café!\nJumps over 12 dogs.\n"
CALIBRATION_TEXT = "It was the best of times, it was the worst of times; héllo wörld! 12345\n" * 2

VARIANTS = {
    # entropy patching with a calibrated threshold, size limits, per-line context reset,
    # differential attention in the entropy model, encoder and global transformer
    "entropy": dict(
        patching_scheme="entropy", initial_entropy_threshold=1.25, monotonic_threshold=0.7, patch_stride=3,
        min_patch_size=2, max_patch_size=6, reset_context=True, target_mean_patch_size=3.0,
        entropy_attention="differential", encoder_attention="differential", global_attention="differential",
        decoder_memory_patches=2, decoder_gate=True, global_rope_theta=5000.0,
    ),
    # space patching, differential attention in the decoder, cross-attention only in the first
    # decoder layer, the transformers-compatibility variants switched on
    "space": dict(
        patching_scheme="space", max_patch_size=5, use_monotonic=True, decoder_attention="differential",
        cross_attn_all_layers_decoder=False, headwise_norm=False, entropy_rope_theta=20000.0,
        decoder_intermediate_size=40, cross_attn_double_residual=True, global_final_norm=False,
        last_position_continues_patch=True,
    ),
}


def build(name: str, seed: int) -> BLT:
    torch.manual_seed(seed)
    model = BLT(BLTConfig(**{**TINY, **VARIANTS[name]})).eval()
    with torch.no_grad():  # weights far from their near-zero init, so the logits differ per position
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    if name == "entropy":
        ent = model.entropy_model.entropies(torch.tensor([encode(CALIBRATION_TEXT)]))
        model.config.entropy_threshold = calibrate_threshold(ent, 3.0)
    return model


def main(out: Path) -> None:
    ids = torch.tensor([encode(TEXT)])
    for seed, name in enumerate(VARIANTS):
        model = build(name, seed)
        d = out / f"checkpoint_v1_{name}"
        save_model(model, d)
        with torch.no_grad():
            logits = model(ids)[0]
            lengths, _ = model.patch(ids)
        positions = torch.tensor(sorted({*range(0, ids.shape[1], 2), ids.shape[1] - 1}))  # half of them: small files
        save_file({"ids": ids[0].contiguous(), "positions": positions, "logits": logits[positions].contiguous(),
                   "patch_lengths": lengths[0].contiguous()}, str(d / "logits.safetensors"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
