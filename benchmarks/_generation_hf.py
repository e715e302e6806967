"""transformers' BltForCausalLM at our model's shape, timed like our engines
(benchmarks/generation.py): its documentation generates without a cache."""

from __future__ import annotations

import math
import time

import torch
from _generation_timing import CallCounter, PeakMemory, Row

from blt_model import BLTConfig, calibrate_threshold, encode


def build_hf(cfg: BLTConfig, max_pos: int, seed: int):
    from transformers import BltConfig, BltForCausalLM

    common = dict(max_position_embeddings=max_pos)
    local = dict(hidden_size=cfg.hidden_size, num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
                 hidden_size_global=cfg.effective_global_hidden_size, cross_attn_k=cfg.cross_attn_k, **common)
    hc = BltConfig(
        vocab_size=260, max_position_embeddings=max_pos, patch_in_forward=True, patch_size=4,
        patching_mode="entropy", patching_threshold=1.0, max_patch_length=cfg.patching.max_patch_size,
        local_attention_window_len=cfg.window_size, cross_attn_k=cfg.cross_attn_k,
        encoder_hash_byte_group_size=list(cfg.ngram_sizes), encoder_hash_byte_group_vocab=cfg.ngram_vocab_size,
        encoder_hash_byte_group_nb_functions=cfg.ngram_hash_functions,
        patcher_config=dict(hidden_size=cfg.entropy_hidden_size, num_hidden_layers=cfg.entropy_model_layers,
                            num_attention_heads=cfg.entropy_num_heads,
                            intermediate_size=cfg.entropy_intermediate_size,
                            sliding_window=cfg.entropy_context_size, **common),
        encoder_config=dict(num_hidden_layers=max(1, cfg.encoder_layers), cross_attn_all_layers=False, **local),
        decoder_config=dict(num_hidden_layers=cfg.decoder_layers,
                            cross_attn_all_layers=cfg.cross_attn_all_layers_decoder, **local),
        global_config=dict(hidden_size=cfg.effective_global_hidden_size, num_attention_heads=cfg.effective_global_num_heads,
                           num_hidden_layers=cfg.global_layers, intermediate_size=cfg.effective_global_intermediate_size,
                           **common),
        bos_token_id=1, eos_token_id=None, pad_token_id=0,
    )
    torch.manual_seed(seed)
    return BltForCausalLM(hc).eval()


def calibrate_hf(hf, text: bytes, target: float, device: torch.device) -> float:
    ids = torch.tensor([encode(text[:4096])], device=device)
    with torch.inference_mode():
        ent, _, _ = hf.model.patcher(ids, patch_size=None)
    # transformers starts a patch where entropies[:, 1:] > threshold
    theta = calibrate_threshold(ent[0, 1:], target)
    hf.config.patching_threshold = theta
    return theta


def _clock(counter: CallCounter):
    """A streamer that notes the time and the global-transformer calls at each new token."""
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.prompt_seen = False
            self.at_first = self.at_last = (0, 0)

        def put(self, value) -> None:
            if not self.prompt_seen:  # generate() first streams the prompt
                self.prompt_seen = True
                return
            self.times.append(time.perf_counter())
            self.at_last = counter.snapshot()
            if len(self.times) == 1:
                self.at_first = self.at_last

        def end(self) -> None:
            pass

    return Clock()


def run_hf(hf, prompt: bytes, n: int, device: torch.device, seed: int) -> Row:
    ids = torch.tensor([encode(prompt)], device=device)
    counter = CallCounter(hf.model.global_transformer)
    clock = _clock(counter)
    torch.manual_seed(seed)
    with PeakMemory(device) as mem, torch.inference_mode():
        t0 = time.perf_counter()
        hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                    use_cache=False, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, streamer=clock)
    counter.remove()
    calls, rows = clock.at_last[0] - clock.at_first[0], clock.at_last[1] - clock.at_first[1]
    t = clock.times
    steps = max(1, len(t) - 1)
    return Row(
        model="", engine="hf no-cache", prompt_bytes=len(prompt), context_ids=len(prompt) + 1, new_bytes=len(t),
        ttfb_s=t[0] - t0, bytes_per_s=(len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else math.nan,
        global_calls_per_byte=calls / steps, global_rows_per_byte=rows / steps,
        peak_rss_delta_bytes=mem.delta, peak_rss_bytes=mem.peak_rss, cuda_peak_bytes=mem.cuda_peak,
    )
