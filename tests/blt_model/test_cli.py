"""The `blt` command line: every subcommand end to end on a tiny model, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import blt_model.cli as cli
from blt_model import BLT, save_model
from tests.helpers import tiny_config

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 20
TINY = dict(decoder_layers=1, window_size=32, entropy_context_size=32, max_position_embeddings=256)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "train.txt").write_text(TEXT)
    (d / "config.json").write_text(json.dumps({"model": tiny_config(**TINY).to_dict(),
                                               "training": {"eval_max_batches": 2, "warmup_steps": 2}}))
    rc = cli.main(["train", "--data", str(d / "train.txt"), "--config", str(d / "config.json"),
                   "--out", str(d / "run"), "--max-steps", "4", "--entropy-steps", "2", "--batch-size", "2",
                   "--seq-len", "64", "--eval-interval", "2", "--seed", "1", "--no-progress"])
    assert rc == 0
    return d


def test_train_writes_best_and_last(run_dir):
    for sub in ("best", "last"):
        assert (run_dir / "run" / sub / "config.json").is_file()
        assert (run_dir / "run" / sub / "model.safetensors").is_file()
    assert (run_dir / "run" / "state.pt").is_file()


def test_eval_json_has_model_and_compressors(run_dir, capsys):
    rc = cli.main(["eval", "--model", str(run_dir / "run" / "best"), str(run_dir / "train.txt"), "--json",
                   "--reference", str(run_dir / "train.txt")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    r = out["results"][0]
    assert r["bytes"] == len(TEXT) and r["bits_per_byte"] > 0
    assert set(r["compressors"]) == {"gzip", "bz2", "lzma"}
    assert r["compressors_given_reference"]["lzma"] < r["compressors"]["lzma"]


def test_eval_table(run_dir, capsys):
    assert cli.main(["eval", "--model", str(run_dir / "run" / "best"), str(run_dir / "train.txt")]) == 0
    out = capsys.readouterr().out
    assert "gzip" in out and "lzma" in out and f"{len(TEXT):,}" in out


def test_generate_streams_and_shows_patches(run_dir, capsys):
    model = str(run_dir / "run" / "best")
    assert cli.main(["generate", "--model", model, "To be", "--max-bytes", "12", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("To be")
    assert cli.main(["generate", "--model", model, "To be", "--max-bytes", "12", "--seed", "0",
                     "--show-patches"]) == 0
    cap = capsys.readouterr()
    assert "To" in cap.out and "patches" in cap.err


def test_generate_without_model_warns_random(monkeypatch, capsys):
    monkeypatch.setattr(cli, "default_model_path", lambda: None)
    assert cli.main(["generate", "hi", "--max-bytes", "4", "--seed", "0"]) == 0
    assert "RANDOM" in capsys.readouterr().err


def test_default_model_path(tmp_path, monkeypatch):
    import blt_chat_assets

    import blt_model.shipped as shipped

    monkeypatch.setattr(blt_chat_assets, "__path__", [str(tmp_path)])
    monkeypatch.setattr(shipped, "__file__", str(tmp_path / "pkg" / "shipped.py"))  # no checkout fallback
    assert cli.default_model_path() is None
    save_model(BLT(tiny_config(**TINY)), tmp_path / "models" / "blt-tiny")
    assert cli.default_model_path() == tmp_path / "models" / "blt-tiny"


def test_shipped_location_is_an_installed_package():
    """assets/ is installed as the package blt_chat_assets, so `pip install .` carries the model."""
    import blt_chat_assets

    assert (Path(blt_chat_assets.__path__[0]) / "__init__.py").is_file()


def test_info(run_dir, capsys):
    assert cli.main(["info", "--model", str(run_dir / "run" / "best"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"]["total"] > 0 and info["flops_per_byte"] > 0
    assert info["entropy_threshold"] is not None
    assert cli.main(["info", "--preset", "tiny"]) == 0
    assert "FLOPs per byte" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["train", "--data", "/no/such/file.txt", "--out", "{tmp}/r"], "/no/such/file.txt"),
    (["train", "--data", "{tmp}/empty.txt", "--out", "{tmp}/r"], "no usable documents"),
    (["train", "--data", "{tmp}/ok.txt", "--config", "{tmp}/bad.json", "--out", "{tmp}/r"], "not valid JSON"),
    (["train", "--data", "{tmp}/ok.txt", "--out", "{tmp}/r", "--resume"], "nothing to resume"),
    (["eval", "--model", "{tmp}/nomodel", "{tmp}/ok.txt"], "nomodel"),
    (["eval", "--model", "{tmp}/nomodel", "{tmp}/empty.txt"], "empty"),
    (["info", "--config", "{tmp}/badfield.json"], "unknown field"),
    (["generate", "--model", "{tmp}/ok.txt"], "not a model directory"),
])
def test_errors_are_one_line(tmp_path, capsys, argv, needle):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "ok.txt").write_text("some text to train on")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "badfield.json").write_text(json.dumps({"hidden_sise": 3}))
    rc = cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert needle in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err


def test_help_exits_cleanly(capsys):
    for cmd in ([], ["train"], ["eval"], ["generate"], ["info"]):
        with pytest.raises(SystemExit) as e:
            cli.main([*cmd, "--help"])
        assert e.value.code == 0
    assert "--show-patches" in capsys.readouterr().out


def test_visible_escapes_control_characters():
    assert cli._visible("a\x1b[31mb\n\tc\x85\x7f") == "a\\x1b[31mb\n\tc\\x85\\x7f"
    assert cli._visible("héllo wörld") == "héllo wörld"
