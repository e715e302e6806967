import json

import pytest

from blt_model import BLTConfig, PatchingConfig
from blt_model.config import PRESETS


def test_json_round_trip_every_preset():
    for name in PRESETS:
        cfg = BLTConfig.preset(name)
        again = BLTConfig.from_json(cfg.to_json())
        assert again == cfg
        assert json.loads(cfg.to_json())["hidden_size"] == cfg.hidden_size


def test_unknown_key_names_the_field():
    data = BLTConfig().to_dict()
    data["hiden_size"] = 12
    with pytest.raises(ValueError, match="hiden_size"):
        BLTConfig.from_dict(data)
    with pytest.raises(ValueError, match="strid"):
        PatchingConfig.from_dict({"strid": 3})


@pytest.mark.parametrize("field,value", [
    ("num_heads", 5),  # does not divide 128
    ("hidden_size", 0),
    ("attention_dropout", 1.5),
    ("encoder_attention", "sparse"),
    ("global_num_heads", 7),
    ("ngram_sizes", [1]),
    ("patching_scheme", "words"),
    ("max_patch_size", 0),
    ("vocab_size", 256),
])
def test_impossible_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field if field != "patching_scheme" else "scheme"):
        BLTConfig(**{field: value})


def test_differential_needs_even_heads():
    with pytest.raises(ValueError, match="num_heads"):
        BLTConfig(hidden_size=96, num_heads=3, encoder_attention="differential")


def test_presets_follow_the_design_notes():
    base = BLTConfig.preset("base")
    assert (base.hidden_size, base.intermediate_size, base.num_heads) == (512, 2048, 16)
    assert (base.encoder_layers, base.global_layers, base.decoder_layers) == (2, 8, 6)
    assert base.attention_dropout == base.resid_dropout == 0.12
    assert (base.ngram_vocab_size, base.window_size, base.max_position_embeddings) == (150000, 512, 4096)
    large = BLTConfig.preset("large")
    assert (large.hidden_size, large.intermediate_size, large.num_heads) == (768, 3072, 24)
    assert (large.encoder_layers, large.global_layers, large.decoder_layers) == (4, 12, 8)
    assert (large.ngram_vocab_size, large.window_size, large.max_position_embeddings) == (200000, 1024, 8192)
    assert (large.entropy_model_layers, large.entropy_context_size) == (3, 1024)
    for name in PRESETS:  # BLT paper patch sizes, not the notes' 64
        assert BLTConfig.preset(name).target_mean_patch_size == 4.5
    with pytest.raises(ValueError, match="preset"):
        BLTConfig.preset("huge")


def test_patching_config_validation():
    with pytest.raises(ValueError, match="max_patch_size"):
        PatchingConfig(min_patch_size=4, max_patch_size=2)
    with pytest.raises(ValueError, match="stride"):
        PatchingConfig(scheme="fixed", stride=0)
    with pytest.raises(ValueError, match="entropy_threshold"):
        PatchingConfig(entropy_threshold=float("nan"))
    assert PatchingConfig.from_dict(PatchingConfig(scheme="space").to_dict()).scheme == "space"


def test_default_patching_uses_calibrated_threshold():
    cfg = BLTConfig(initial_entropy_threshold=2.0)
    assert cfg.default_patching().entropy_threshold == 2.0
    cfg.entropy_threshold = 1.25
    assert cfg.default_patching().entropy_threshold == 1.25
