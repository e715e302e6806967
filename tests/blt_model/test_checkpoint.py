import json

import pytest
import torch

from blt_model import CheckpointError, encode, load_model, save_model
from tests.helpers import tiny_model


@pytest.fixture
def saved(tmp_path):
    model = tiny_model(decoder_gate=True, decoder_memory_patches=2, encoder_attention="differential")
    save_model(model, tmp_path / "m")
    return model, tmp_path / "m"


def test_round_trip_bit_identical(saved):
    model, path = saved
    loaded = load_model(path)
    ids = torch.tensor([encode("round trip, bit for bit")])
    with torch.no_grad():
        assert torch.equal(model(ids), loaded(ids))
    assert loaded.config == model.config  # the calibrated threshold travels with the model
    assert not loaded.training


def test_half_precision_storage_restores_float32(tmp_path):
    model = tiny_model()
    save_model(model, tmp_path / "h", dtype=torch.float16)
    loaded = load_model(tmp_path / "h")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    ids = torch.tensor([encode("half")])
    with torch.no_grad():
        assert torch.allclose(model(ids), loaded(ids), atol=5e-2)
    assert (tmp_path / "h" / "model.safetensors").stat().st_size < sum(
        p.numel() for p in model.parameters()) * 4 * 0.6


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "nope")


def test_not_a_model_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a model directory"):
        load_model(tmp_path)


def test_missing_weights(saved):
    _, path = saved
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        load_model(path)


def test_missing_config(saved):
    _, path = saved
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="missing config.json"):
        load_model(path)


def test_truncated_weights(saved):
    _, path = saved
    w = path / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as e:
        load_model(path)
    assert str(w) in str(e.value)


def test_garbage_weights(saved):
    _, path = saved
    (path / "model.safetensors").write_bytes(b"\x00\x01not a safetensors file at all" * 10)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(path)


def test_config_does_not_match_tensors(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["intermediate_size"] = 96
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape"):
        load_model(path)
    cfg["intermediate_size"] = 64
    cfg["decoder_gate"] = False  # the saved gate tensors become unexpected
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="unexpected tensor"):
        load_model(path)


def test_invalid_config(saved):
    _, path = saved
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(path)
    cfg = tiny_model().config.to_dict()
    cfg["bogus"] = 1
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="bogus"):
        load_model(path)


def test_save_is_atomic(saved, monkeypatch):
    """A save interrupted before the rename leaves the previous model loadable."""
    model, path = saved
    import blt_model.io.checkpoint as ck

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck.os, "replace", boom)
    with pytest.raises(OSError):
        save_model(tiny_model(seed=5), path)
    monkeypatch.undo()
    loaded = load_model(path)
    ids = torch.tensor([encode("still here")])
    with torch.no_grad():
        assert torch.equal(model(ids), loaded(ids))
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]


def test_saved_files_are_readable_by_others(saved):
    _, path = saved
    for name in ("config.json", "model.safetensors"):
        assert (path / name).stat().st_mode & 0o777 == 0o644
