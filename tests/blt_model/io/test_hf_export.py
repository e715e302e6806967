"""Writing a model back in transformers' BLT format (`blt_model.io.hf_export`, `blt convert --to
transformers`): transformers' BltForCausalLM reads the result with the original's logits, the
loader reads it back unchanged, and configs transformers cannot express are refused by name."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from blt_model import encode, load_model
from blt_model.io.hf_export import HFExportError, blt_config_to_hf, save_hf_model

from ..test_hf_compat import VARIANTS, _hf_model, _save

TEXT = "Bytes, not tokens: BLT cuts text into patches! 12345 \u00e9t\u00e9."


def _same_model(a, b) -> None:
    assert a.config == b.config
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[n], sb[n]) for n in sa)


@pytest.mark.parametrize("variant", ["projected", "gqa_maxpatch", "windows"])
def test_export_round_trips_through_transformers(variant, tmp_path):
    transformers = pytest.importorskip("transformers")
    hf = _hf_model(list(VARIANTS).index(variant), **VARIANTS[variant])
    ours = load_model(_save(hf, tmp_path / "hf"))
    out = save_hf_model(ours, tmp_path / "exported")
    raw = json.loads((out / "config.json").read_text())
    assert raw["model_type"] == "blt" and raw["architectures"] == ["BltForCausalLM"]
    back = transformers.BltForCausalLM.from_pretrained(str(out)).eval()
    ids = torch.tensor([encode(TEXT)])
    with torch.no_grad():
        want, got = hf(ids, use_cache=False).logits, back(ids, use_cache=False).logits
    assert (want - got).abs().max().item() <= 1e-4
    _same_model(load_model(out), ours)


def test_native_configs_are_refused_naming_the_field(tmp_path):
    ours = load_model(_save(_hf_model(1, k=2, Dg=64), tmp_path / "hf"))
    blt_config_to_hf(ours.config)  # a converted config is expressible
    cases = {"encoder_attention": "differential", "decoder_gate": True, "global_final_norm": True,
             "decoder_memory_patches": 2, "cross_attn_double_residual": False}
    for name, value in cases.items():
        with pytest.raises(HFExportError, match=f"^{name} = .*transformers"):
            blt_config_to_hf(dataclasses.replace(ours.config, **{name: value}))
    with pytest.raises(HFExportError, match="num_hidden_layers"):
        blt_config_to_hf(dataclasses.replace(ours.config, encoder_layers=0))
    fixed = dataclasses.replace(ours.config.patching, scheme="fixed", stride=1)
    with pytest.raises(HFExportError, match="patching.scheme"):
        blt_config_to_hf(dataclasses.replace(ours.config, patching=fixed))


def test_cli_round_trip_and_refusals(tmp_path, capsys):
    from blt_model.cli import commands as cli
    from blt_model.io.checkpoint import save_model
    from tests.helpers import tiny_model

    src = _save(_hf_model(5, k=3, Dg=48), tmp_path / "hf")
    ours, back = tmp_path / "ours", tmp_path / "back"
    assert cli.main(["convert", str(src), str(ours)]) == 0
    assert cli.main(["convert", str(ours), str(back), "--to", "transformers"]) == 0
    assert "transformers format" in capsys.readouterr().out
    assert json.loads((back / "config.json").read_text())["model_type"] == "blt"
    _same_model(load_model(back), load_model(src))
    assert cli.main(["convert", str(ours), str(back), "--to", "transformers"]) == 2  # exists: --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["convert", str(ours), str(back), "--to", "transformers", "--overwrite"]) == 0
    _same_model(load_model(back), load_model(src))

    native = tmp_path / "native"
    save_model(tiny_model(0), native)  # this project's defaults: not expressible
    capsys.readouterr()
    assert cli.main(["convert", str(native), str(tmp_path / "refused"), "--to", "transformers"]) == 2
    err = capsys.readouterr().err
    assert "cannot be expressed in transformers' BLT" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "refused").exists()
