"""The compressor round-trips any bytes: empty, one byte, binary, invalid UTF-8, control bytes,
multilingual text, inputs of many chunks and groups (tiny random-weight model, small chunks)."""

import random
from pathlib import Path

import pytest

from blt_model.codec import compress, decompress, read_header
from tests.helpers import SAMPLE_TEXT, tiny_model

pytest.importorskip("constriction")

MULTILINGUAL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "multilingual" / "udhr_13_languages.txt"
_rng = random.Random(16)


def _multilingual_slice(start: int, n: int) -> bytes:
    if MULTILINGUAL.is_file():
        return MULTILINGUAL.read_bytes()[start: start + n]  # may cut a UTF-8 character in half
    return ("Tous les êtres humains naissent libres. 人人生而自由. Все люди рождаются свободными. "
            "جميع الناس يولدون أحرارا. Όλοι οι άνθρωποι γεννιούνται ελεύθεροι. 😀\n").encode()[:n]


INPUTS = {
    "empty": b"",
    "one byte": b"a",
    "nul": b"\x00",
    "0xff": b"\xff",
    "random binary": _rng.randbytes(300),
    "invalid utf-8": b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x90\x28\xbc\xff\xfe" * 6,
    "control bytes": bytes(range(32)) * 3 + b"\x7f\x1b[31m",
    "every byte value": bytes(range(256)),
    "multilingual udhr": _multilingual_slice(0, 400),
    "multilingual cut mid-character": _multilingual_slice(5001, 151),
    "multilingual built-in": "héllo wörld 中文 Ελληνικά русский العربية 😀\n".encode() * 3,
    "sample text": SAMPLE_TEXT.encode(),
    "several groups": (SAMPLE_TEXT * 6).encode(),
    "exactly one chunk": b"x" * 32,
    "one chunk and a byte": b"y" * 33,
    "one group exactly": bytes(range(97, 123)) * 10 + b"abcdefghijklmnopqrst",
    "repeated byte": b"a" * 200,
    "newlines": b"\n" * 100,
    "crlf text": b"line one\r\nline two\r\n" * 8,
    "json": b'{"a": [1, 2, 3], "b": {"c": "d\\u00e9"}, "e": null}\n' * 4,
    "nul and high bytes": b"\x00\xff\x80\x7f" * 40,
}
CHUNK, BATCH = 32, 8


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.mark.parametrize("name", list(INPUTS))
def test_round_trip(model, name):
    data = INPUTS[name]
    blob = compress(model, data, chunk_size=CHUNK, batch_size=BATCH)
    assert decompress(model, blob) == data
    h = read_header(blob)
    assert (h.original_length, h.chunk_size, h.batch_size) == (len(data), CHUNK, BATCH)
    assert h.num_chunks == -(-len(data) // CHUNK)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_any_batch_layout_round_trips_and_is_deterministic(model, batch_size):
    data = INPUTS["several groups"][:100]
    blob = compress(model, data, chunk_size=CHUNK, batch_size=batch_size)
    assert blob == compress(model, data, chunk_size=CHUNK, batch_size=batch_size)  # same bits every time
    assert decompress(model, blob) == data


def test_count_of_inputs_is_at_least_twenty():
    assert len(INPUTS) >= 20 and len(set(INPUTS.values())) == len(INPUTS)


def test_options_are_checked(model):
    for bad in (dict(chunk_size=0), dict(batch_size=0), dict(threads=True)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            compress(model, b"abc", **bad)
