"""The fast prefill (inference/state.py): a long prompt runs in chunks (attention linear in the
prompt), and without `all_logits` the stacks nothing else needs run only over the last positions
that decide their caches; either way every later step equals the full forward."""

import pytest
import torch

from blt_model import PatchingConfig, encode
from blt_model.inference import state
from blt_model.inference.engine import CachedEngine, ReferenceEngine
from tests.helpers import SAMPLE_TEXT, tiny_model

TEXT = (SAMPLE_TEXT * 3)[:180]  # > 2 chunks of 64, > the tail of every windowed stack (window 16)


def _steps(engine, ids, steps, all_logits):
    out = engine.prefill([ids], all_logits=all_logits)
    outs = [out] + [engine.step([i]) for i in steps]
    return out, torch.cat([o.next_logits for o in outs]), torch.cat([o.entropies for o in outs], 1)


@pytest.mark.parametrize("scheme,overrides", [
    ("space", dict()),  # the entropy model's early positions are skipped too
    ("entropy", dict(decoder_memory_patches=2, last_position_continues_patch=True, decoder_attention="differential")),
])
def test_chunked_tail_prefill_equals_the_full_forward(monkeypatch, scheme, overrides):
    monkeypatch.setattr(state, "PREFILL_CHUNK", 64)
    model = tiny_model(**overrides)
    cfg = PatchingConfig(**{**model.config.patching.to_dict(), "scheme": scheme})
    ids, steps = encode(TEXT), encode(" and then some more bytes.", add_bos=False)
    assert len(ids) > 2 * 64 > state.tail_positions(model.decoder.stack)
    ref_first, ref, ref_ent = _steps(ReferenceEngine(model, cfg), ids, steps, True)
    full_first, full, _ = _steps(CachedEngine(model, cfg), ids, steps, True)
    last_first, last, last_ent = _steps(CachedEngine(model, cfg), ids, steps, False)
    assert full_first.logits.shape == (1, len(ids), 260) and last_first.logits.shape == (1, 1, 260)
    assert float((full_first.logits - ref_first.logits).abs().max()) <= 1e-4  # every prompt position
    assert float((full - ref).abs().max()) <= 1e-4
    assert float((last - ref).abs().max()) <= 1e-4
    assert torch.equal(last_first.patch_starts, ref_first.patch_starts)
    n = len(ids)
    known = ~torch.isnan(last_ent)
    assert bool(known[0, n - 1:].all())  # the last prompt position and every step have entropies
    assert float((last_ent[known] - ref_ent[known]).abs().max()) <= 1e-4
    if scheme == "space":
        assert bool(torch.isnan(last_ent[0, 0]))  # skipped: nothing needed it


def test_tail_positions():
    model = tiny_model(calibrate=False)
    # decoder: 2 layers over a window of 16 -> layer 2 at t reads layer-1 outputs back to t - 30
    assert state.tail_positions(model.decoder.stack) == 2 * 15 + 1
    assert state.tail_positions(model.global_model.stack) > 10**9  # no window: every position
