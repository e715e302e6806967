"""A damaged, truncated, foreign or newer stream is refused with one clear line, and the file
API writes nothing then; platform differences are reported before decoding."""

import struct
from dataclasses import replace

import pytest

from blt_model.codec import CodecError, compress, compress_file, decompress, decompress_file
from blt_model.codec.container import FORMAT_VERSION, pack, unpack
from tests.helpers import SAMPLE_TEXT, tiny_model

pytest.importorskip("constriction")

DATA = (SAMPLE_TEXT * 2).encode()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def blob(model):
    return compress(model, DATA, chunk_size=40, batch_size=2)


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_corrupted_payload_byte_names_the_chunk(model, blob):
    bad = bytearray(blob)
    bad[-20] ^= 0x5A  # inside the last group's stream
    with pytest.raises(CodecError, match=r"chunk \d+") as e:
        decompress(model, bytes(bad))
    _one_line(e)


def test_corrupted_header_byte_is_caught_by_its_checksum(model, blob):
    c = unpack(blob)
    bad = bytearray(blob)
    bad[len(blob) - 4 * len(c.payload) - 6] ^= 1  # in the CRC table
    with pytest.raises(CodecError, match="corrupt header"):
        decompress(model, bytes(bad))


@pytest.mark.parametrize("cut", [1, 3, 8, 20, 200])
def test_truncated_stream(model, blob, cut):
    with pytest.raises(CodecError, match="truncated|corrupt") as e:
        decompress(model, blob[:-cut] if cut < 200 else blob[:cut])
    _one_line(e)


def test_trailing_bytes_and_foreign_files(model, blob):
    with pytest.raises(CodecError, match="after the end"):
        decompress(model, blob + b"\0\0\0\0")
    with pytest.raises(CodecError, match="not a blt compressed file"):
        decompress(model, b"\x1f\x8b\x08 a gzip file")


def test_wrong_model_is_refused(blob):
    with pytest.raises(CodecError, match="another model") as e:
        decompress(tiny_model(seed=1), blob)
    _one_line(e)


def test_unknown_version_is_refused(model, blob):
    bad = blob[:4] + struct.pack("<B", FORMAT_VERSION + 1) + blob[5:]
    with pytest.raises(CodecError, match=f"version {FORMAT_VERSION + 1} is not supported"):
        decompress(model, bad)


def test_platform_difference_is_reported_before_decoding(model, blob):
    c = unpack(blob)
    c.header = replace(c.header, platform={**c.header.platform, "cpu": "a different CPU", "torch": "1.0"})
    warnings = []
    assert decompress(model, pack(c), warn=warnings.append) == DATA
    assert len(warnings) == 1 and "a different CPU" in warnings[0] and "torch" in warnings[0]
    warnings.clear()
    decompress(model, blob, warn=warnings.append)
    assert warnings == []


def test_file_api_writes_nothing_on_error_and_refuses_existing_output(model, blob, tmp_path):
    src, packed, out = tmp_path / "in.txt", tmp_path / "in.blt", tmp_path / "out.txt"
    src.write_bytes(DATA)
    assert compress_file(model, src, packed, chunk_size=40, batch_size=2) == packed.stat().st_size
    with pytest.raises(ValueError, match="already exists; pass --force"):
        compress_file(model, src, packed)
    assert decompress_file(model, packed, out) == len(DATA) and out.read_bytes() == DATA
    for bad in (packed.read_bytes()[:-7], b"BLTz" + packed.read_bytes()[4:-1]):
        (tmp_path / "bad.blt").write_bytes(bad)
        with pytest.raises(CodecError):
            decompress_file(model, tmp_path / "bad.blt", tmp_path / "never.txt")
        assert not (tmp_path / "never.txt").exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    with pytest.raises(CodecError, match="another model"):
        decompress_file(tiny_model(seed=1), packed, tmp_path / "never.txt")
    assert not (tmp_path / "never.txt").exists()
