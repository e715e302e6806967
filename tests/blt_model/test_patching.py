import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from blt_model import (
    OnlinePatcher,
    PatchingConfig,
    calibrate_threshold,
    encode,
    lengths_to_starts,
    patch_starts,
    starts_to_lengths,
    starts_to_patch_ids,
)


def configs():
    return st.builds(
        PatchingConfig,
        scheme=st.sampled_from(["entropy", "fixed", "space"]),
        entropy_threshold=st.floats(0.5, 3.0),
        use_monotonic=st.booleans(),
        monotonic_threshold=st.floats(-0.5, 0.5),
        stride=st.integers(1, 6),
        min_patch_size=st.integers(1, 3),
        max_patch_size=st.one_of(st.none(), st.integers(3, 8)),
    )


def batch(draw_ids, draw_ent):
    ids = torch.tensor(draw_ids)
    ent = torch.tensor(draw_ent, dtype=torch.float32)
    return ids, ent


ids_strategy = st.lists(st.integers(4, 259), min_size=1, max_size=60)


@st.composite
def sequences(draw):
    rows = draw(st.integers(1, 3))
    T = draw(st.integers(1, 60))
    ids = [[1] + draw(st.lists(st.integers(4, 259), min_size=T, max_size=T)) for _ in range(rows)]
    ent = [draw(st.lists(st.floats(0, 4, allow_nan=False), min_size=T + 1, max_size=T + 1)) for _ in range(rows)]
    return torch.tensor(ids), torch.tensor(ent, dtype=torch.float32)


@settings(max_examples=150, deadline=None)
@given(sequences(), configs())
def test_patcher_properties(seq, cfg):
    ids, ent = seq
    B, T = ids.shape
    starts = patch_starts(ids, ent, cfg)
    assert starts.shape == (B, T + 1)
    lengths = starts_to_lengths(starts[:, :T])
    assert torch.equal(lengths.sum(-1), torch.full((B,), T))  # lengths cover the sequence
    assert bool((lengths[:, 0] == 1).all())  # patch 0 is BOS alone
    assert bool(starts[:, 0].all()) and (T < 2 or bool(starts[:, 1].all()))
    for b in range(B):
        ls = [int(x) for x in lengths[b] if x > 0]
        inner = ls[1:-1]  # the last patch may still be open
        if cfg.max_patch_size is not None:
            assert all(x <= cfg.max_patch_size for x in ls)
        if cfg.scheme != "fixed":
            assert all(x >= cfg.min_patch_size for x in inner)
        elif cfg.max_patch_size is None or cfg.max_patch_size >= cfg.stride:
            assert all(x == cfg.stride for x in inner)
    assert torch.equal(lengths_to_starts(lengths, T), starts[:, :T])
    # incremental patcher agrees exactly
    for b in range(B):
        p = OnlinePatcher(cfg)
        online = [True] + [p.feed(int(i), float(h)) for i, h in zip(ids[b], ent[b, :T])]
        assert online == starts[b].tolist()


@settings(max_examples=100, deadline=None)
@given(sequences(), configs(), st.data())
def test_decision_for_t_plus_1_ignores_later_ids(seq, cfg, data):
    """The online rule: starts up to t + 1 depend only on ids and entropies at <= t."""
    ids, ent = seq
    T = ids.shape[1]
    t = data.draw(st.integers(0, T - 1))
    ids2, ent2 = ids.clone(), ent.clone()[:, :T]
    if t + 1 < T:
        ids2[:, t + 1:] = torch.randint(4, 260, ids2[:, t + 1:].shape)
        ent2[:, t + 1:] = torch.rand(ent2[:, t + 1:].shape) * 4
    a = patch_starts(ids, ent[:, :T], cfg)
    b = patch_starts(ids2, ent2, cfg)
    assert torch.equal(a[:, : t + 2], b[:, : t + 2])
    # prefixes give the same decisions as the full sequence
    c = patch_starts(ids[:, : t + 1], ent[:, : t + 1], cfg)
    assert torch.equal(a[:, : t + 2], c)


def space_lengths(text: str) -> list[bytes]:
    ids = torch.tensor([encode(text)])
    starts = patch_starts(ids, None, PatchingConfig(scheme="space"))
    lengths = starts_to_lengths(starts[:, : ids.shape[1]])[0].tolist()
    raw, out, pos = text.encode(), [], 0
    for n in lengths[1:]:
        out.append(raw[pos: pos + n])
        pos += n
    return out


def test_space_patching_examples():
    assert space_lengths("hello, world") == [b"hello,", b" world"]
    assert space_lengths("a  b") == [b"a ", b" b"]
    assert space_lengths(" hi there") == [b" hi ", b"there"]
    # multi-byte UTF-8 characters are never split
    patches = space_lengths("naïve café über")
    for p in patches:
        p.decode("utf-8")
    assert b"".join(patches) == "naïve café über".encode()


def test_fixed_and_entropy_rules():
    ids = torch.tensor([[1] + [100] * 10])
    s = patch_starts(ids, None, PatchingConfig(scheme="fixed", stride=3))
    assert starts_to_lengths(s[:, :11])[0].tolist() == [1, 3, 3, 3, 1]
    ent = torch.tensor([[0.0, 2.0, 0.1, 0.2, 3.0, 0.0]])
    ids = torch.tensor([[1, 70, 71, 72, 73, 74]])
    s = patch_starts(ids, ent, PatchingConfig(entropy_threshold=1.0))
    # t + 1 starts iff H_t > 1: positions 2 (H_1) and 5 (H_4), plus 0 and 1
    assert s[0].tolist() == [True, True, True, False, False, True, False]
    m = patch_starts(ids, ent, PatchingConfig(use_monotonic=True, monotonic_threshold=0.5))
    # t + 1 starts iff H_t - H_{t-1} > 0.5: t = 1 (2.0 - 0.0), t = 4 (3.0 - 0.2)
    assert m[0].tolist() == [True, True, True, False, False, True, False]


def test_calibrate_threshold_hits_target():
    torch.manual_seed(0)
    ent = torch.rand(1, 20000) * 3
    theta = calibrate_threshold(ent, 4.5)
    ids = torch.full((1, 20000), 100)
    s = patch_starts(ids, ent, PatchingConfig(entropy_threshold=theta))
    mean_size = 20000 / int(s[:, :20000].sum())
    assert abs(mean_size - 4.5) < 0.2
    ent[0, :10] = float("nan")
    assert abs(calibrate_threshold(ent, 4.5) - theta) < 0.05


def test_patch_ids():
    s = torch.tensor([[True, True, False, True, False, False]])
    assert starts_to_patch_ids(s)[0].tolist() == [0, 1, 1, 2, 2, 2]
