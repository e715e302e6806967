import math

import pytest
import torch
import torch.nn.functional as F

from blt_model import SelfAttention, lambda_init_schedule, rotary_cos_sin, window_mask
from blt_model.nn.layers import RMSNorm, apply_rotary


def test_lambda_init_schedule_values():
    assert lambda_init_schedule(1) == pytest.approx(0.2)
    assert lambda_init_schedule(2) == pytest.approx(0.8 - 0.6 * math.exp(-0.3))
    assert lambda_init_schedule(5) == pytest.approx(0.8 - 0.6 * math.exp(-1.2))
    assert lambda_init_schedule(100) == pytest.approx(0.8, abs=1e-6)
    with pytest.raises(ValueError):
        lambda_init_schedule(0)


def _inputs(S=7, dim=32):
    x = torch.randn(2, S, dim)
    pos = torch.arange(S)
    cos, sin = rotary_cos_sin(pos, 8, 10000.0, x.dtype)
    return x, pos, cos, sin


def test_differential_reduces_to_ordinary_attention_over_first_map():
    attn = SelfAttention(32, 4, kind="differential", layer_index=3, headwise_norm=False)
    with torch.no_grad():
        for p in (attn.lambda_q1, attn.lambda_k1, attn.lambda_q2, attn.lambda_k2):
            p.zero_()
    attn.lambda_init = 0.0  # lambda = exp(0) - exp(0) + 0 = 0
    assert float(attn.lambda_value()) == 0.0
    x, pos, cos, sin = _inputs()
    mask = window_mask(pos, pos, None)
    q, k, v = attn.project(x, cos, sin)
    out = attn.attend(q, k, v, mask)
    # ordinary softmax attention with the first query/key map of each head pair
    q1, k1 = q[:, 0::2], k[:, 0::2]
    scores = q1 @ k1.transpose(-1, -2) / math.sqrt(q1.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    ref = torch.softmax(scores, -1) @ v  # [B, H/2, S, 2d]
    ref = attn.wo(ref.transpose(1, 2).reshape(2, 7, 32))
    assert torch.allclose(out, ref, atol=1e-6)


def test_differential_formula_with_headwise_norm():
    attn = SelfAttention(32, 4, kind="differential", layer_index=2)
    x, pos, cos, sin = _inputs()
    mask = window_mask(pos, pos, None)
    q, k, v = attn.project(x, cos, sin)
    out = attn.attend(q, k, v, mask)
    d = q.shape[-1]

    def amap(qq, kk):
        s = (qq @ kk.transpose(-1, -2) / math.sqrt(d)).masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -1)

    lam = attn.lambda_value()
    a = (amap(q[:, 0::2], k[:, 0::2]) - lam * amap(q[:, 1::2], k[:, 1::2])) @ v
    a = F.rms_norm(a, (2 * d,), attn.headwise_norm.weight, 1e-5) * (1 - attn.lambda_init)
    ref = attn.wo(a.transpose(1, 2).reshape(2, 7, 32))
    assert torch.allclose(out, ref, atol=1e-5)


def test_parameter_counts_match_between_kinds():
    std = SelfAttention(64, 8, "standard")
    diff = SelfAttention(64, 8, "differential", headwise_norm=False)
    n_std = sum(p.numel() for p in std.parameters())
    n_diff = sum(p.numel() for p in diff.parameters())
    assert n_diff - n_std == 4 * 8  # only the four lambda vectors of width d


def test_window_mask():
    pos = torch.arange(6)
    m = window_mask(pos, pos, 3)[0, 0]
    assert m[5].tolist() == [False, False, False, True, True, True]
    assert m[0].tolist() == [True] + [False] * 5
    seg = torch.tensor([[0, 0, 1, 1, 1, 2]])
    m = window_mask(pos, pos, None, seg, seg)[0, 0]
    assert m[4].tolist() == [False, False, True, True, True, False]


def test_rmsnorm_and_rotary():
    x = torch.randn(3, 16)
    y = RMSNorm(16)(x)
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(3), atol=1e-4)
    # rotary: dot products depend only on relative position
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def dot(pq, pk):
        cq, sq = rotary_cos_sin(torch.tensor([pq]), 8, 10000.0, torch.float32)
        ck, sk = rotary_cos_sin(torch.tensor([pk]), 8, 10000.0, torch.float32)
        return float((apply_rotary(q, cq, sq) * apply_rotary(k, ck, sk)).sum())

    assert dot(5, 2) == pytest.approx(dot(105, 102), abs=1e-4)


def _branch_rms(kind: str) -> list[float]:
    """RMS of every self-attention branch (the output of wo) of a fresh BLT on English bytes."""
    from blt_model import BLT, BLTConfig, encode

    torch.manual_seed(0)
    cfg = BLTConfig.preset("tiny").replace(encoder_attention=kind, global_attention=kind,
                                           decoder_attention=kind, patching={"scheme": "space"})
    model = BLT(cfg).eval()
    text = ("It is a truth universally acknowledged, that a single man in possession of a good "
            "fortune, must be in want of a wife. ") * 3
    out: list[float] = []
    hooks = [m.attn.wo.register_forward_hook(lambda _m, _i, o: out.append(o.pow(2).mean().sqrt().item()))
             for name, m in model.named_modules()
             if isinstance(getattr(m, "attn", None), SelfAttention) and not name.startswith("entropy")]
    with torch.no_grad():
        model(torch.tensor([encode(text)]))
    for h in hooks:
        h.remove()
    return out


def test_differential_branches_start_no_louder_than_standard_ones():
    # issue 12: with a norm gain of 1 the local layers' differential branch started ~22x louder
    # than standard attention's (0.17 against 0.008), and short training runs stayed behind
    std, diff = _branch_rms("standard"), _branch_rms("differential")
    assert len(std) == len(diff) >= 3
    for s, d in zip(std, diff):
        assert d < 4 * s, (std, diff)
