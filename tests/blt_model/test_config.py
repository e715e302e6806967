import json
from pathlib import Path

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
    ("patching_scheme", "words"),  # the flat patching keys of config format v1
    ("max_patch_size", 0),
    ("vocab_size", 256),
    ("patching", {"scheme": "words"}),
    ("patching", {"max_patch_size": 0}),
])
def test_impossible_values_name_the_field(field, value):
    name = {"patching_scheme": "scheme", "patching": f"patching.{next(iter(value))}" if isinstance(value, dict) else ""}
    with pytest.raises(ValueError, match=name.get(field, field)):
        BLTConfig.from_dict({field: value})


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


def test_patching_uses_calibrated_threshold():
    cfg = BLTConfig(patching=PatchingConfig(entropy_threshold=2.0))  # the initial threshold
    assert cfg.patching.entropy_threshold == 2.0 and not cfg.entropy_threshold_calibrated
    cfg.set_calibrated_threshold(1.25)
    assert cfg.patching.entropy_threshold == 1.25 and cfg.entropy_threshold_calibrated
    assert BLTConfig.from_json(cfg.to_json()) == cfg


def test_default_patching_of_a_model():
    cfg = BLTConfig()
    assert cfg.patching == PatchingConfig(max_patch_size=16)
    # a partial "patching" object takes the model defaults for the rest
    assert BLTConfig(patching={"scheme": "space"}).patching == PatchingConfig(scheme="space", max_patch_size=16)
    assert cfg.with_patching(stride=2).patching.stride == 2 and cfg.patching.stride == 4


def test_replace_gives_its_own_patching():
    a = BLTConfig()
    b = a.replace(hidden_size=64)
    b.set_calibrated_threshold(0.5)
    b.patching.stride = 7
    assert a.patching.entropy_threshold == 1.5 and a.patching.stride == 4 and not a.entropy_threshold_calibrated


# what BLTConfig.to_dict() wrote up to commit 5abe862, patching fields flat
V1_FLAT = {"patching_scheme": "fixed", "entropy_threshold": 2.75, "initial_entropy_threshold": 1.25,
           "use_monotonic": True, "monotonic_threshold": 0.5, "patch_stride": 3, "min_patch_size": 2,
           "max_patch_size": 9, "reset_context": True}


def test_flat_v1_patching_keys_migrate_to_the_nested_form():
    v1 = json.loads((Path(__file__).parent / "data" / "checkpoint_v1_entropy" / "config.json").read_text())
    assert BLTConfig.from_dict(v1).patching == PatchingConfig(
        scheme="entropy", entropy_threshold=v1["entropy_threshold"], monotonic_threshold=0.7, stride=3,
        min_patch_size=2, max_patch_size=6, reset_context=True)
    cfg = BLTConfig.from_dict({**v1, **V1_FLAT})
    assert cfg.patching == PatchingConfig(scheme="fixed", entropy_threshold=2.75, use_monotonic=True,
                                          monotonic_threshold=0.5, stride=3, min_patch_size=2, max_patch_size=9,
                                          reset_context=True)
    assert cfg.entropy_threshold_calibrated and cfg.hidden_size == 16 and cfg.target_mean_patch_size == 3.0
    # not calibrated (entropy_threshold null): the initial threshold is the one in use
    cfg = BLTConfig.from_dict({**V1_FLAT, "entropy_threshold": None})
    assert cfg.patching.entropy_threshold == 1.25 and not cfg.entropy_threshold_calibrated
    # keys left out take the old defaults (max_patch_size 16)
    cfg = BLTConfig.from_dict({"patching_scheme": "space"})
    assert cfg.patching == PatchingConfig(scheme="space", max_patch_size=16) and not cfg.entropy_threshold_calibrated
    # what the new version writes has no flat keys and round-trips
    data = json.loads(cfg.to_json())
    assert not set(V1_FLAT) & set(data) and data["patching"]["scheme"] == "space"
    assert BLTConfig.from_json(cfg.to_json()) == cfg


def test_unknown_or_mixed_patching_keys_are_refused_by_name():
    data = BLTConfig().to_dict()
    data["patching"]["strid"] = 3
    with pytest.raises(ValueError, match="patching: unknown field 'strid'"):
        BLTConfig.from_dict(data)
    with pytest.raises(ValueError, match="'patch_stride' is an old flat patching field"):
        BLTConfig.from_dict({**BLTConfig().to_dict(), "patch_stride": 3})
    with pytest.raises(ValueError, match="patching: must be a PatchingConfig or a JSON object"):
        BLTConfig.from_dict({"patching": "space"})
    with pytest.raises(ValueError, match="BLTConfig: expected a JSON object"):
        BLTConfig.from_dict(["hidden_size"])


def test_resolved_sizes_fall_back_to_the_local_ones():
    cfg = BLTConfig(global_hidden_size=None, global_intermediate_size=None, global_num_heads=None)
    assert (cfg.effective_global_hidden_size, cfg.effective_global_intermediate_size,
            cfg.effective_global_num_heads) == (cfg.hidden_size, cfg.intermediate_size, cfg.num_heads)
    assert cfg.effective_global_rope_theta == cfg.effective_entropy_rope_theta == cfg.rope_theta
    assert cfg.effective_decoder_intermediate_size == cfg.intermediate_size
    cfg = BLTConfig(global_rope_theta=500.0, entropy_rope_theta=20.0, decoder_intermediate_size=96)
    assert (cfg.effective_global_rope_theta, cfg.effective_entropy_rope_theta) == (500.0, 20.0)
    assert (cfg.effective_global_hidden_size, cfg.effective_decoder_intermediate_size) == (384, 96)
