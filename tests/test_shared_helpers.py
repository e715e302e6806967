"""One implementation each (issue 14): the atomic write, the terminal escaper, the entropy colour
scale and the model-directory check live in blt_model, and the app and the command line use
them rather than copies of their own."""

from __future__ import annotations

import json

import blt_chat.files
import blt_chat.render as render
import blt_chat.service as service
import blt_chat.settings as settings
import blt_model.cli.generate as generate
import blt_model.entropy_scale as scale
import blt_model.guards as guards
import blt_model.io.files as files
from blt_model.cli.style import markup_safe
from blt_model.io.checkpoint import save_model
from blt_model.io.model_dir import INDEX_NAME, is_model_dir, model_dir_problem
from tests.helpers import tiny_model


def test_settings_and_app_files_are_written_by_the_library(tmp_path, monkeypatch):
    written = []
    real = files.atomic_write

    def recording(path, write):
        written.append(path)
        real(path, write)

    monkeypatch.setattr(files, "atomic_write", recording)
    path = settings.save_settings(settings.Settings(), tmp_path / "settings.json")
    assert written == [path] and json.loads(path.read_text())
    assert blt_chat.files.atomic_write_text is files.atomic_write_text
    assert not hasattr(settings, "atomic_write_text")


def test_one_escaper_two_spellings():
    # every code point of the first planes, and a few beyond, escaped by the one rule
    chars = [chr(o) for o in (*range(0x3000), *range(0xD7F0, 0xE010), 0xFEFF, 0x202E, 0x2028, 0xE0001, 0x10FFFF)]
    for c in chars:
        cli, app = guards.escape_char(c), render.escape_char(c)
        assert (cli is None) == (app is None), repr(c)
        assert app == guards.escape_char(c, readable=True)
        if c not in "\t":
            assert guards.terminal_safe(c) == (cli or c)
    assert guards.terminal_safe("\u202eevil") == "\\u202eevil"  # a bidi override cannot reorder a line


def test_one_entropy_colour_scale():
    assert render.BUCKET_HEX is scale.BUCKET_HEX and render.entropy_bucket is scale.entropy_bucket
    assert [c.hex.lower() for c in render.BUCKET_COLORS] == list(scale.BUCKET_HEX)
    assert generate.entropy_hex is scale.entropy_hex
    assert scale.entropy_hex(float("nan")) is None and scale.entropy_hex(0.0) == scale.BUCKET_HEX[0]
    assert scale.entropy_hex(99.0) == scale.BUCKET_HEX[-1]


def test_one_model_directory_check(tmp_path):
    assert service.is_model_dir is is_model_dir and service.model_dir_problem is model_dir_problem
    ours = save_model(tiny_model(calibrate=False), tmp_path / "ours")
    assert is_model_dir(ours) and model_dir_problem(ours) is None
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "blt"}))
    assert "missing model.safetensors" in model_dir_problem(hf)
    (hf / INDEX_NAME).write_text("{}")
    assert is_model_dir(hf)  # transformers' sharded format
    half = tmp_path / "config-only"
    half.mkdir()
    (half / "config.json").write_text("{}")
    assert model_dir_problem(half) == "missing model.safetensors"  # load_model would refuse it
    (half / "config.json").write_text("[1]")
    assert "JSON object" in model_dir_problem(half)
    assert "no such file" in model_dir_problem(tmp_path / "nothing")
    assert "not a model directory" in model_dir_problem(tmp_path)
    assert not is_model_dir(tmp_path / "ours" / "config.json")


def test_markup_escaping_is_the_command_lines():
    assert not hasattr(guards, "markup_safe")  # blt_model outside cli/ imports no rich
    assert markup_safe("[bold]x\x1b") == "\\[bold]x\\x1b"
