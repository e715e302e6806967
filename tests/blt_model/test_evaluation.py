"""Bits per byte, windowed scoring, metrics, compressor baselines and the metrics table."""

from __future__ import annotations

import math
import os

import pytest
import torch
from rich.console import Console

from blt_model import PatchingConfig, encode, lm_loss
from blt_model.cli.report import print_compression_table, print_metrics_table
from blt_model.ids import BOS_ID, OFFSET
from blt_model.train.data import ByteDataset
from blt_model.train.evaluation import (
    MetricsAccumulator,
    compressor_bits_per_byte,
    compute_bits_per_byte,
    sliding_windows,
)
from tests.helpers import tiny_model

TEXT = "The quick brown fox jumps over the lazy dog. " * 6


def test_compressors_rank_redundant_below_random():
    text = (b"abcabcabd" * 400)
    noise = os.urandom(3600)
    t = compressor_bits_per_byte(text)
    n = compressor_bits_per_byte(noise)
    assert set(t) == {"gzip", "bz2", "lzma"}
    assert all(t[k] < 1.0 for k in t) and all(n[k] > 7.5 for k in n)
    # knowing a reference that contains the same text makes it cheaper
    given = compressor_bits_per_byte(noise[:500], reference=noise)
    assert given["lzma"] < compressor_bits_per_byte(noise[:500])["lzma"]
    with pytest.raises(ValueError):
        compressor_bits_per_byte(b"")


@pytest.mark.parametrize("n,window,stride", [(10, 8, None), (100, 16, 5), (100, 16, 15), (7, 64, None)])
def test_sliding_windows_score_every_byte_once_with_context(n, window, stride):
    data = bytes(range(n))
    pieces = sliding_windows(data, window, stride)
    scored = b""
    for ids, new in pieces:
        assert ids[0] == BOS_ID and len(ids) <= window
        body = bytes(i - OFFSET for i in ids[1:])
        scored += body[len(body) - new:]
        ctx = len(body) - new
        # every window carries as much context as fits beside its new bytes
        assert ctx == min(len(scored) - new, window - 1 - new)
    assert scored == data


def test_metrics_of_perfect_and_uniform_predictions():
    ids = torch.tensor([encode("hello")])
    perfect = torch.full((1, ids.shape[1], 260), -1e4)
    perfect[0, torch.arange(ids.shape[1] - 1), ids[0, 1:]] = 0.0
    acc = MetricsAccumulator()
    acc.update(perfect, ids)
    m = acc.result()
    assert m["accuracy"] == 1.0 and m["loss"] < 1e-6 and m["bytes"] == 5
    acc = MetricsAccumulator()
    acc.update(torch.zeros(1, ids.shape[1], 260), ids)
    m = acc.result()
    assert m["bits_per_byte"] == pytest.approx(math.log2(260)) and m["confidence_max"] == pytest.approx(1 / 260)
    with pytest.raises(ValueError):
        MetricsAccumulator().result()


def test_short_input_matches_direct_loss_and_reports_patches():
    model = tiny_model(max_position_embeddings=256)
    m = compute_bits_per_byte(model, TEXT)
    ids = torch.tensor([encode(TEXT)])
    with torch.no_grad():
        loss, n = lm_loss(model(ids), ids)
    assert n == len(TEXT)
    assert m["loss"] == pytest.approx(float(loss), rel=1e-5)
    assert m["bits_per_byte"] == pytest.approx(float(loss) / math.log(2), rel=1e-5)
    assert 1.0 <= m["mean_patch_size"] <= len(TEXT)
    for k in ("accuracy", "perplexity", "confidence_mean", "confidence_min", "confidence_max"):
        assert math.isfinite(m[k])
    fixed = compute_bits_per_byte(model, TEXT.encode(), PatchingConfig(scheme="fixed", stride=4))
    assert fixed["mean_patch_size"] == pytest.approx(len(TEXT) / math.ceil(len(TEXT) / 4), rel=0.05)


def test_long_input_scored_in_windows_with_context():
    model = tiny_model(max_position_embeddings=256)
    data = TEXT.encode()  # 270 bytes: more than one window of 64
    m = compute_bits_per_byte(model, data, window=64, stride=16, batch_size=3)
    assert m["bytes"] == len(data)
    # the same windows scored one by one give the same numbers
    acc = MetricsAccumulator()
    with torch.no_grad():
        for ids, new in sliding_windows(data, 64, 16):
            x = torch.tensor([ids])
            mask = torch.zeros(1, len(ids) - 1, dtype=torch.bool)
            mask[0, len(ids) - 1 - new:] = True
            acc.update(model(x), x, target_mask=mask)
    assert m["loss"] == pytest.approx(acc.result()["loss"], rel=1e-5)


def test_dataset_input_and_empty_input():
    model = tiny_model(max_position_embeddings=256)
    ds = ByteDataset([TEXT, "second document"], max_length=64, mode="eval")
    m = compute_bits_per_byte(model, ds)
    assert m["bytes"] == len(TEXT) + len("second document")
    with pytest.raises(ValueError):
        compute_bits_per_byte(model, b"")


def test_tables_render():
    con = Console(record=True, width=100)
    print_metrics_table({"loss": 1.0, "bits_per_byte": 1.4427, "accuracy": 0.5, "mean_patch_size": 4.2,
                         "extra_thing": 3}, "Validation", console=con)
    print_compression_table([{"file": "a.txt", "bytes": 10, "model": 2.0, "gzip": 3.0, "bz2": 2.5, "lzma": 2.7}],
                            console=con)
    out = con.export_text()
    assert "Validation" in out and "Bits per byte" in out and "50.00%" in out and "extra thing" in out
    assert "a.txt" in out and "2.000" in out and "gzip" in out
