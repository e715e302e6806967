"""Readers, ByteDataset windows, collate_batch and the batch sampler; one test per bad input."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from blt_model.ids import BOE_ID, BOS_ID, decode
from blt_model.train.data import (
    BucketBatchSampler,
    ByteDataset,
    DataError,
    collate_batch,
    is_binary,
    read_documents,
    split_documents,
)


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- readers ------------------------------------------------------------------------------------

def test_reads_files_directories_and_globs(tmp_path):
    a = write(tmp_path / "d" / "a.txt", "alpha text")
    write(tmp_path / "d" / "sub" / "b.txt", "beta text")
    write(tmp_path / "d" / ".hidden", "skip me")
    docs, stats = read_documents([str(a)])
    assert docs == [b"alpha text"] and stats.files == 1
    docs, stats = read_documents(str(tmp_path / "d"))
    assert sorted(docs) == [b"alpha text", b"beta text"] and stats.documents == 2
    docs, _ = read_documents(str(tmp_path / "d" / "**" / "*.txt"))
    assert sorted(docs) == [b"alpha text", b"beta text"]


def test_jsonl_text_field_and_bad_lines_counted(tmp_path):
    lines = [json.dumps({"text": "first doc"}), "not json", json.dumps({"other": 1}),
             json.dumps({"text": "second doc"}), ""]
    p = write(tmp_path / "x.jsonl", "\n".join(lines))
    docs, stats = read_documents(p)
    assert docs == [b"first doc", b"second doc"]
    assert stats.skipped_jsonl_lines == 2


def test_missing_path_names_it(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match="nope.txt"):
        read_documents([str(missing)])


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(DataError, match="matches no files"):
        read_documents(str(tmp_path / "*.txt"))


def test_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no files"):
        read_documents(str(tmp_path / "empty"))


def test_unreadable_file_names_path(tmp_path, monkeypatch):
    p = write(tmp_path / "locked.txt", "secret")
    real = os.open

    def deny(path, *args, **kwargs):
        if Path(path).name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)  # files are read via os.open (after a regular-file check)
    with pytest.raises(DataError, match="locked.txt.*Permission denied"):
        read_documents([str(p)])


def test_empty_and_short_files_are_counted_skips(tmp_path):
    write(tmp_path / "a.txt", "")
    write(tmp_path / "b.txt", "tiny")
    write(tmp_path / "c.txt", "long enough text")
    docs, stats = read_documents(str(tmp_path), min_length=8)
    assert docs == [b"long enough text"]
    assert stats.skipped_empty == 1 and stats.skipped_short == 1
    assert "skipped 1 empty" in stats.summary()


def test_only_bad_files_is_an_error(tmp_path):
    write(tmp_path / "a.txt", "")
    with pytest.raises(DataError, match="no usable documents"):
        read_documents(str(tmp_path))


def test_binary_files_skipped_unless_allowed(tmp_path):
    blob = bytes(range(256)) * 4
    write(tmp_path / "img.bin", blob)
    write(tmp_path / "t.txt", "some text")
    assert is_binary(blob) and not is_binary("héllo wörld \u4e2d\u6587\n".encode())
    docs, stats = read_documents(str(tmp_path))
    assert docs == [b"some text"] and stats.skipped_binary == 1
    assert any("img.bin" in p for p in stats.skipped_paths)
    docs, stats = read_documents(str(tmp_path), allow_binary=True)
    assert blob in docs and stats.skipped_binary == 0


def test_invalid_utf8_is_kept_as_bytes(tmp_path):
    raw = b"caf\xe9 latin-1 and \xff\xfe junk"
    write(tmp_path / "l1.txt", raw)
    docs, stats = read_documents(str(tmp_path))
    assert docs == [raw] and stats.invalid_utf8 == 1
    ds = ByteDataset(docs, max_length=64, mode="eval")
    assert decode(ds[0].tolist()) == raw


def test_hf_source_without_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails
    with pytest.raises(DataError, match="datasets"):
        read_documents("hf:wikitext?split=train")
    with pytest.raises(DataError, match="unknown option"):
        read_documents("hf:wikitext?splt=train")


def test_split_documents_holds_out_tails():
    train, valid = split_documents([b"a" * 100, b"b" * 40], 0.1)
    assert train[0] + valid[0] == b"a" * 100 and len(valid[0]) == 10
    assert len(valid) == 2


def test_split_documents_holds_out_every_part_of_a_long_document():
    # a file that joins sources (prose, then code) must validate on each, not only the last
    doc = b"p" * 3000 + b"c" * 1000
    train, valid = split_documents([doc], 0.1, segment_bytes=1000)
    assert len(valid) == 4 and b"".join(valid).count(b"p") == 300 and b"".join(valid).count(b"c") == 100
    # every byte is in exactly one half, in order
    pieces = [p for pair in zip(train, valid) for p in pair]
    assert b"".join(pieces) == doc


# --- dataset ------------------------------------------------------------------------------------

DOC = bytes(range(32, 127)) * 5  # 475 bytes


def test_train_windows_are_contiguous_slices_with_bos():
    ds = ByteDataset([DOC, b"short doc"], max_length=33, min_length=1, mode="train", seed=3)
    assert len(ds) == 15 + 1  # ceil(475 / 32) + 1
    for i in range(len(ds)):
        ids = ds[i]
        assert ids[0] == BOS_ID and len(ids) <= 33
        assert decode(ids.tolist()) in (DOC, b"short doc") or decode(ids.tolist()) in DOC
    # deterministic per (seed, epoch, index); a new epoch draws new windows
    first = [ds[i].tolist() for i in range(len(ds))]
    assert first == [ds[i].tolist() for i in range(len(ds))]
    ds.set_epoch(1)
    assert first != [ds[i].tolist() for i in range(len(ds))]


def test_eval_windows_cover_each_document_once():
    ds = ByteDataset([DOC, b"xyz"], max_length=33, mode="eval")
    got = b"".join(decode(ds[i].tolist()) for i in range(len(ds)))
    assert got == DOC + b"xyz"
    assert all(ds.item_length(i) == len(ds[i]) for i in range(len(ds)))


def test_dataset_skips_short_and_reports():
    ds = ByteDataset(["", "ab", "long enough"], max_length=16, min_length=5, report_stats=True)
    assert len(ds.docs) == 1 and ds.stats.skipped_short == 1 and ds.stats.skipped_empty == 1
    assert "1 documents" in ds.report


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_length"):
        ByteDataset(["abc"], max_length=1)
    with pytest.raises(ValueError, match="mode"):
        ByteDataset(["abc"], max_length=8, mode="test")
    with pytest.raises(TypeError):
        ByteDataset([123], max_length=8)


def test_collate_pads_with_boe():
    batch = collate_batch([torch.tensor([BOS_ID, 5, 6]), torch.tensor([BOS_ID, 7])])
    assert batch.tolist() == [[BOS_ID, 5, 6], [BOS_ID, 7, BOE_ID]]
    assert batch.dtype == torch.long


# --- sampler ------------------------------------------------------------------------------------

def test_sharded_batches_union_to_the_single_process_batches():
    lengths = [10 + (i * 7) % 13 for i in range(37)]
    kw = dict(seed=1, bucket=True, drop_last=True)
    one = list(BucketBatchSampler(lengths, 4, **kw))
    shards = [list(BucketBatchSampler(lengths, 2, rank=r, world_size=2, **kw)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(one) == 9
    for b, s0, s1 in zip(one, *shards, strict=True):
        assert s0 + s1 == b and len(s0) == len(s1) == 2
    # without drop_last the short final batch is kept, split so that no rank is left empty
    shards = [list(BucketBatchSampler(lengths, 4, rank=r, world_size=2, shuffle=False)) for r in range(2)]
    assert all(b for s in shards for b in s) and sum(len(b) for s in shards for b in s) == 37


def test_sampler_skip_resumes_mid_epoch():
    s = BucketBatchSampler(list(range(20)), 3, seed=2)
    s.set_epoch(4)
    full = list(s)
    s.skip = 2
    assert list(s) == full[2:]
    assert list(s) == full  # skip applies to one iteration only
