import math

import pytest
import torch

from blt_chat.service import ModelLoadError, ModelService, resolve_device
from blt_chat.settings import Settings
from blt_model import save_model

from .conftest import tiny_config


def test_patch_config_overrides(tiny_service):
    base = tiny_service.config.patching
    assert tiny_service.patch_config(Settings()) == base
    cfg = tiny_service.patch_config(Settings(scheme="monotonic", monotonic_threshold=0.7))
    assert cfg.scheme == "entropy" and cfg.use_monotonic and cfg.monotonic_threshold == 0.7
    cfg = tiny_service.patch_config(Settings(scheme="fixed", stride=3, max_patch_size=0))
    assert cfg.scheme == "fixed" and cfg.stride == 3 and cfg.max_patch_size is None
    cfg = tiny_service.patch_config(Settings(min_patch_size=5, max_patch_size=2))
    assert cfg.max_patch_size == 5  # clamped so the config stays valid


def test_generation_streams_byte_events(tiny_service):
    evs = list(tiny_service.generate(b"hello", Settings(max_new_bytes=20, seed=3, scheme="fixed", stride=4)))
    assert 1 <= len(evs) <= 20
    data = [e for e in evs if e.byte is not None]
    assert all(0 <= e.byte < 256 for e in data)
    assert all(math.isfinite(e.entropy) for e in evs)


def test_analyze_chunked_equals_full(tiny_service):
    data = ("The entropy model has a bounded context. " * 200).encode()  # > 2 chunks of 2048
    a = tiny_service.analyze(data)
    assert a.entropies.shape == a.ids.shape == (1, len(data) + 1)
    with torch.inference_mode():
        full = tiny_service.model.entropy_model.entropies(a.ids)
    assert torch.allclose(a.entropies, full, atol=1e-4)


def test_repatch_uses_stored_entropies(tiny_service):
    a = tiny_service.analyze(b"Patches form where the next byte is hard to predict.")
    base = tiny_service.config.patching
    hs = sorted(a.byte_entropies)
    lo = ModelService.repatch(a, base.replace(entropy_threshold=hs[0] - 1, max_patch_size=None))
    hi = ModelService.repatch(a, base.replace(entropy_threshold=hs[-1] + 1, max_patch_size=None))
    assert lo.n_patches == len(a.data)  # every byte starts a patch
    assert hi.n_patches == 1
    assert sum(p["length"] for p in lo.patches) == len(a.data)
    fixed = ModelService.repatch(a, base.replace(scheme="fixed", stride=4, max_patch_size=None))
    assert [p["length"] for p in fixed.patches][:-1] == [4] * (fixed.n_patches - 1)


def test_load_errors_are_messages(tmp_path):
    with pytest.raises(ModelLoadError, match="no such directory"):
        ModelService.load(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError) as e:
        ModelService.load(bad)
    assert str(bad) in str(e.value)


def test_load_saved_model_and_startup_order(tmp_path, monkeypatch):
    model = ModelService.random(tiny_config(), device="cpu").model
    d = tmp_path / "m"
    save_model(model, d)
    svc = ModelService.load(d, "cpu")
    assert svc.name == "m" and not svc.random_weights and svc.params == model.num_parameters()
    s = Settings(last_model=str(d))
    svc2, notes = ModelService.startup(None, s)
    # the last model used comes first
    assert svc2.path == d.resolve() and notes == []
    # issue 10, item 6: a bad argument falls back to a trained model, not to random weights
    svc3, notes = ModelService.startup(str(tmp_path / "nope"), s)
    assert svc3.path == d.resolve() and any("nope" in n for n in notes)
    # random weights only when no trained model exists at all
    monkeypatch.setattr("blt_chat.service.find_shipped_model", lambda: None)
    svc4, notes = ModelService.startup(str(tmp_path / "nope"), Settings())
    assert svc4.random_weights and any("nope" in n for n in notes)
    assert any("random weights" in n for n in notes)


def test_resolve_device():
    assert resolve_device("cpu") == ("cpu", None)
    dev, note = resolve_device("auto")
    assert dev in ("cpu", "cuda", "mps") and note is None
    if not torch.cuda.is_available():
        assert resolve_device("cuda")[0] == "cpu" and "CUDA" in resolve_device("cuda")[1]


def test_prompt_bytes_seen_is_the_library_rule_for_this_model(tiny_service):
    from blt_model.inference.generation import prompt_bytes_kept

    n_pos = tiny_service.config.max_position_embeddings
    for n in (10, n_pos - 1, n_pos, 10 * n_pos):
        assert tiny_service.prompt_bytes_seen(n) == prompt_bytes_kept(n, n_pos)
    assert tiny_service.prompt_bytes_seen(10 * n_pos) == n_pos // 2
