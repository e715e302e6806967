"""The batched cached engine: B sequences stepped together, each with its own patch boundaries,
equal to the single-sequence engine within 1e-4."""

import pytest
import torch

from blt_model import calibrate_threshold, encode
from blt_model.inference.batch import BatchedState
from blt_model.inference.engine import CachedEngine
from blt_model.inference.state import IncrementalState
from tests.helpers import SAMPLE_TEXT, tiny_model

ROWS = [b"Hello world.\nThis is row zero of the batch, a text.", bytes(range(200, 250)),
        ("h\u00e9llo w\u00f6rld\nabc defg hij" * 3).encode(), b"x" * 50]
STEPS = 45


def sharp_model(**overrides):
    """A tiny model whose entropy model is confident enough that entropies spread far apart (a
    random one gives all entropies within 1e-3 of log 256, where float rounding alone would flip
    patch decisions between any two ways of computing them); threshold at the median."""
    model = tiny_model(calibrate=False, **overrides)
    with torch.no_grad():
        model.entropy_model.head.weight.mul_(40)
    ids = torch.tensor([encode(SAMPLE_TEXT * 2)])
    ent = model.entropy_model.entropies(ids)
    model.config.set_calibrated_threshold(calibrate_threshold(ent, 2.0))
    model.config.patching.monotonic_threshold = float((ent[:, 1:] - ent[:, :-1]).flatten().quantile(0.6))
    return model


def _single(model, cfg, ids):
    state = IncrementalState(model, cfg)
    outs = [state.feed([i]) for i in ids]
    return torch.cat([o[0] for o in outs]), [o[2][0] for o in outs]


@pytest.mark.parametrize("overrides,patching", [
    (dict(), dict()),
    (dict(), dict(reset_context=True)),
    (dict(), dict(scheme="space")),
    (dict(decoder_memory_patches=2, last_position_continues_patch=True), dict(use_monotonic=True)),
    (dict(decoder_memory_patches=3), dict(reset_context=True)),
])
def test_each_row_equals_the_single_sequence_engine(overrides, patching):
    model = sharp_model(**overrides)
    cfg = model.config.patching.replace(**patching)
    rows = [encode(r)[:STEPS] for r in ROWS]
    state = BatchedState(model, cfg, len(rows))
    logits, starts = [], []
    for t in range(STEPS):
        lg, H, st = state.step([r[t] for r in rows])
        assert lg.shape == (len(rows), 260) and len(H) == len(st) == len(rows)
        logits.append(lg)
        starts.append(st)
    logits = torch.stack(logits, 1)  # [B, T, V]
    per_row = [[s[b] for s in starts] for b in range(len(rows))]
    for b, ids in enumerate(rows):
        ref_logits, ref_starts = _single(model, cfg, ids)
        assert per_row[b] == ref_starts  # each row its own patch boundaries
        assert float((logits[b] - ref_logits).abs().max()) <= 1e-4
    assert len({tuple(r) for r in per_row}) > 1  # the rows really patch differently


def test_cached_engine_runs_batches_through_prefill_and_step():
    model = sharp_model()
    prompts = [encode(r)[:20] for r in ROWS]
    engine = CachedEngine(model)
    out = engine.prefill(prompts)
    assert out.logits.shape == (4, 20, 260) and out.entropies.shape == (4, 20)
    assert out.patch_starts.shape == (4, 20) and bool(out.patch_starts[:, 0].all())
    nxt = [int(out.next_logits[b].argmax()) for b in range(4)]
    step = engine.step(nxt)
    assert step.logits.shape == (4, 1, 260) and step.next_start.shape == (4,)
    assert torch.equal(step.patch_starts[:, 0], out.next_start)
    for b in range(4):
        single = CachedEngine(model)
        ref = single.prefill([prompts[b]])
        ref_step = single.step([nxt[b]])
        assert float((out.logits[b] - ref.logits[0]).abs().max()) <= 1e-4
        assert float((step.logits[b] - ref_step.logits[0]).abs().max()) <= 1e-4
        assert torch.equal(out.patch_starts[b], ref.patch_starts[0])
    assert engine.memory_bytes() > 0


def test_batch_errors_are_one_clear_line():
    model = tiny_model(calibrate=False)
    engine = CachedEngine(model)
    with pytest.raises(ValueError, match="one length"):
        engine.prefill([encode("ab"), encode("abc")])
    engine.prefill([encode("ab"), encode("cd")])
    with pytest.raises(ValueError, match="each of the 2 sequences"):
        engine.step([65])
    engine.prefill([encode("ab")])
    with pytest.raises(ValueError, match="prefilled with 1 sequence"):
        engine.step([65, 66])
    with pytest.raises(ValueError, match="batch"):
        BatchedState(model, model.config.patching, 0)


def test_generate_samples_greedy_rows_equal_generate_text():
    from blt_model import generate_text
    from blt_model.inference.samples import generate_samples

    model = tiny_model()
    texts = generate_samples(model, "Once upon", 3, temperature=0.0, max_new_bytes=12)
    single = generate_text(model, "Once upon", temperature=0.0, max_new_bytes=12)
    assert texts == [single] * 3
    a = generate_samples(model, "Once upon", 4, temperature=1.0, max_new_bytes=10, seed=5)
    assert a == generate_samples(model, "Once upon", 4, temperature=1.0, max_new_bytes=10, seed=5)
    assert len(a) == 4 and len(set(a)) > 1
    with pytest.raises(ValueError, match="n: must be"):
        generate_samples(model, "x", 0)
