"""Checkpoints written before the config was nested still load and give the same logits.

tests/blt_model/data/checkpoint_v1_{entropy,space} were saved by commit
5abe8627d19ce5590130772986d1ea9d090601a7 (flat patching fields in config.json) with
data/make_checkpoints_v1.py, together with the logits and patch lengths that commit's code gave
on a fixed input (logits.safetensors).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from blt_model import load_model

DATA = Path(__file__).parent / "data"
SAVED_BY_COMMIT = "5abe8627d19ce5590130772986d1ea9d090601a7"


@pytest.mark.parametrize("name", ["entropy", "space"])
def test_stored_v1_checkpoint_gives_the_same_logits(name: str) -> None:
    directory = DATA / f"checkpoint_v1_{name}"
    expected = load_file(str(directory / "logits.safetensors"))
    model = load_model(directory)
    ids = expected["ids"][None]
    with torch.no_grad():
        logits = model(ids)[0]
        lengths, _ = model.patch(ids)
    assert lengths[0].tolist() == expected["patch_lengths"].tolist()
    torch.testing.assert_close(logits[expected["positions"]], expected["logits"], atol=1e-6, rtol=0)


def test_shipped_config_is_in_the_nested_format() -> None:
    """assets/models/blt-tiny-en/config.json was re-saved in the nested format (the same config
    as its flat original, so the same logits); it round-trips unchanged."""
    import json

    from blt_model import BLTConfig
    from blt_model.config import FLAT_PATCHING_KEYS

    path = Path(__file__).parents[2] / "assets" / "models" / "blt-tiny-en" / "config.json"
    text = path.read_text()
    assert not set(FLAT_PATCHING_KEYS) & set(json.loads(text))
    cfg = BLTConfig.from_json(text)
    assert cfg.patching.scheme == "space" and cfg.entropy_threshold_calibrated
    assert cfg.to_json() + "\n" == text
