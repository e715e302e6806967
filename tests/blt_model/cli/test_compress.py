"""`blt compress` / `blt decompress`: files and `-`, --force, one-line errors and no output file."""

import io
import sys

import pytest

from blt_model import save_model
from blt_model.cli.commands import main
from tests.helpers import SAMPLE_TEXT, tiny_model

pytest.importorskip("constriction")

DATA = (SAMPLE_TEXT * 2).encode() + bytes(range(256))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    save_model(tiny_model(), d)
    return str(d)


def _blt(*argv: str) -> int:
    return main(list(argv))


def test_files_round_trip_and_existing_output_is_refused(model_dir, tmp_path, capsys):
    src, packed, out = tmp_path / "a.bin", tmp_path / "a.blt", tmp_path / "b.bin"
    src.write_bytes(DATA)
    assert _blt("compress", "--model", model_dir, "--chunk-size", "64", "--batch-size", "4", str(src), str(packed)) == 0
    assert "bits per byte" in capsys.readouterr().err
    assert _blt("decompress", "--model", model_dir, str(packed), str(out)) == 0
    assert out.read_bytes() == DATA
    assert _blt("decompress", "--model", model_dir, str(packed), str(out)) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert _blt("decompress", "--model", model_dir, "--force", str(packed), str(out)) == 0


def test_standard_input_and_output(model_dir, tmp_path, monkeypatch, capsysbinary):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(DATA[:100])))
    assert _blt("compress", "--model", model_dir, "--chunk-size", "64", "-", "-") == 0
    blob = capsysbinary.readouterr().out
    assert blob.startswith(b"BLTz")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(blob)))
    assert _blt("decompress", "--model", model_dir, "-", "-") == 0
    assert capsysbinary.readouterr().out == DATA[:100]


@pytest.mark.parametrize("damage,message", [
    (lambda b: b[:-5], "truncated"),
    (lambda b: b[:4] + b"\x09" + b[5:], "format version 9 is not supported"),
    (lambda b: b[:-9] + bytes([b[-9] ^ 0x40]) + b[-8:], "chunk"),
])
def test_bad_streams_give_one_line_and_no_output(model_dir, tmp_path, capsys, damage, message):
    src, packed, bad, out = tmp_path / "a.bin", tmp_path / "a.blt", tmp_path / "bad.blt", tmp_path / "out.bin"
    src.write_bytes(DATA[:150])
    assert _blt("compress", "--model", model_dir, "--chunk-size", "50", str(src), str(packed)) == 0
    capsys.readouterr()
    bad.write_bytes(damage(packed.read_bytes()))
    assert _blt("decompress", "--model", model_dir, str(bad), str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("blt decompress: error: ") and message in err
    assert not out.exists()


def test_wrong_model_is_refused(model_dir, tmp_path, capsys):
    other = tmp_path / "other"
    save_model(tiny_model(seed=3), other)
    src, packed, out = tmp_path / "a.bin", tmp_path / "a.blt", tmp_path / "out.bin"
    src.write_bytes(b"hello")
    assert _blt("compress", "--model", model_dir, str(src), str(packed)) == 0
    capsys.readouterr()
    assert _blt("decompress", "--model", str(other), str(packed), str(out)) == 2
    assert "compressed with another model" in capsys.readouterr().err and not out.exists()


def test_eval_reports_the_real_compressed_size(model_dir, tmp_path, capsys):
    import json

    src = tmp_path / "a.txt"
    src.write_bytes(DATA[:120])
    assert _blt("eval", "--model", model_dir, "--compressed-size", "--json", str(src)) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    from blt_model import load_model
    from blt_model.codec import compress

    size = len(compress(load_model(model_dir), DATA[:120]))
    assert result["compressed"] == {"bytes": size, "bits_per_byte": 8 * size / 120}
    assert _blt("eval", "--model", model_dir, "--compressed-size", str(src)) == 0
    assert "blt compress" in capsys.readouterr().out


def test_missing_library_is_one_line_with_the_install_command(model_dir, tmp_path, monkeypatch, capsys):
    src = tmp_path / "a.txt"
    src.write_bytes(b"abc")
    monkeypatch.setitem(sys.modules, "constriction", None)  # import constriction raises ImportError
    assert _blt("compress", "--model", model_dir, str(src), str(tmp_path / "a.blt")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'blt-chat[compress]'" in err
    assert not (tmp_path / "a.blt").exists()
