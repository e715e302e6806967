import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blt_model import BLT, PatchingConfig, encode, lm_loss, patch_starts
from tests.helpers import SAMPLE_TEXT, tiny_model

SCHEMES = {
    "entropy": dict(scheme="entropy"),
    "monotonic": dict(scheme="entropy", use_monotonic=True),
    "fixed": dict(scheme="fixed", stride=3),
    "space": dict(scheme="space"),
    "entropy_minmax": dict(scheme="entropy", min_patch_size=2, max_patch_size=4),
    "space_max": dict(scheme="space", max_patch_size=5),
}
VARIANTS = {
    "standard_m1": dict(),
    "differential_m3_gate": dict(encoder_attention="differential", global_attention="differential",
                                 decoder_attention="differential", entropy_attention="differential",
                                 decoder_memory_patches=3, decoder_gate=True),
    "standard_m2_gate_first_layer": dict(decoder_memory_patches=2, decoder_gate=True,
                                         cross_attn_all_layers_decoder=False),
}
_models: dict[str, BLT] = {}


def model_for(variant: str) -> BLT:
    if variant not in _models:
        _models[variant] = tiny_model(**VARIANTS[variant])
    return _models[variant]


def patch_cfg(model: BLT, scheme: str) -> PatchingConfig:
    return model.config.patching.replace(**SCHEMES[scheme])


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("scheme", list(SCHEMES))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_causality(variant, scheme, data):
    """Changing ids after t changes neither logits at <= t nor patch starts at <= t + 1."""
    model = model_for(variant)
    cfg = patch_cfg(model, scheme)
    text = SAMPLE_TEXT.encode()
    T = data.draw(st.integers(2, 48), label="length")
    start = data.draw(st.integers(0, len(text) - T), label="offset")
    ids = torch.tensor([encode(text[start: start + T - 1])])
    T = ids.shape[1]
    t = data.draw(st.integers(0, T - 1), label="cut")
    other = ids.clone()
    if t + 1 < T:
        other[0, t + 1:] = torch.tensor(data.draw(st.lists(st.integers(4, 259), min_size=T - t - 1, max_size=T - t - 1)))
    other = torch.cat([other, torch.tensor([[data.draw(st.integers(4, 259), label="extra")]])], 1)
    with torch.no_grad():
        s1, _ = model.patch_starts(ids, cfg)
        s2, _ = model.patch_starts(other, cfg)
        l1 = model(ids, patch_config=cfg)
        l2 = model(other, patch_config=cfg)
    assert torch.equal(s1[:, : t + 2], s2[:, : t + 2])
    assert torch.allclose(l1[:, : t + 1], l2[:, : t + 1], atol=1e-5)


def test_logits_do_change_with_the_past():
    """Guard against a vacuous causality test: earlier bytes must matter."""
    model = model_for("standard_m1")
    a = torch.tensor([encode("abcdefgh")])
    b = a.clone()
    b[0, 2] = 100
    with torch.no_grad():
        assert not torch.allclose(model(a)[:, 5], model(b)[:, 5], atol=1e-5)


def test_reset_context_entropies_ignore_earlier_lines():
    model = tiny_model(entropy_context_size=64)
    a = torch.tensor([encode("first line here\nsecond line")])
    b = torch.tensor([encode("OTHER text that is different!\nsecond line")])
    ea = model.entropy_model.entropies(a, reset_context=True)
    eb = model.entropy_model.entropies(b, reset_context=True)
    n = len("second line")
    assert torch.allclose(ea[0, -n:], eb[0, -n:], atol=1e-6)
    # without the reset they do depend on the earlier line
    ea = model.entropy_model.entropies(a)
    eb = model.entropy_model.entropies(b)
    assert not torch.allclose(ea[0, -n:], eb[0, -n:], atol=1e-6)


def test_patch_lengths_override_and_patch_api():
    model = tiny_model()
    ids = torch.tensor([encode("hello world")])
    lengths, ent = model.patch(ids)
    assert int(lengths.sum()) == ids.shape[1] and ent.shape == ids.shape
    fixed = PatchingConfig(scheme="fixed", stride=4)
    lengths, ent = model.patch(ids, fixed)
    assert lengths[0].tolist() == [1, 4, 4, 3] and ent is None
    with torch.no_grad():
        via_lengths = model(ids, patch_lengths=lengths)
        starts = patch_starts(ids, None, fixed)
        starts[:, -1] = False  # lengths summing to T: the next position continues the last patch
        assert torch.equal(via_lengths, model(ids, starts=starts))
    with pytest.raises(ValueError, match="patch_lengths"):
        model(ids, patch_lengths=torch.tensor([[1, 2]]))


def test_bad_ids_raise_clear_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match="ids"):
        model(torch.tensor([[1, 300]]))
    with pytest.raises(ValueError, match="ids"):
        model(torch.zeros(1, 0, dtype=torch.long))


def test_padding_is_ignored_by_the_loss_and_does_not_leak():
    model = tiny_model()
    a = torch.tensor([encode("abcdef") + [0, 0, 0]])
    with torch.no_grad():
        logits = model(a)
        short = model(torch.tensor([encode("abcdef")]))
    assert torch.allclose(logits[:, :7], short, atol=1e-5)
    loss, n = lm_loss(logits, a)
    assert n == 6 and math.isfinite(float(loss))


def test_accounting():
    model = tiny_model()
    b = model.parameter_breakdown()
    assert b["total"] == sum(p.numel() for p in model.parameters())
    assert b["hash_embeddings"] == 6 * 64 * 32
    assert model.num_parameters(include_embeddings=False) < model.num_parameters()
    assert model.flops_per_byte(8.0) < model.flops_per_byte(2.0)  # bigger patches, fewer global steps


def test_learning_works():
    """A tiny model overfits one 256-byte text below 0.3 bits per byte."""
    torch.manual_seed(0)
    text = (SAMPLE_TEXT * 3).encode()[:256]
    model = tiny_model(calibrate=False, hidden_size=64, intermediate_size=128, global_hidden_size=64,
                       global_intermediate_size=128, window_size=64, patching={"scheme": "fixed", "stride": 4})
    ids = torch.tensor([encode(text)])
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    bpb = float("inf")
    for step in range(400):  # noqa: B007 - reported on failure
        loss, _ = lm_loss(model(ids), ids)
        opt.zero_grad()
        loss.backward()
        opt.step()
        bpb = float(loss) / math.log(2)
        if bpb < 0.2:
            break
    model.eval()
    with torch.no_grad():
        loss, _ = lm_loss(model(ids), ids)
    assert float(loss) / math.log(2) < 0.3, f"stuck at {bpb:.3f} bpb after {step + 1} steps"
