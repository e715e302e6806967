"""Byte-level training batches: `ByteDataset` windows over documents, `collate_batch`, a
deterministic, resumable batch sampler sharded across processes, and `make_loader` to put them
together. Reading the documents is `documents.py` (its names are re-exported here).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..ids import BOE_ID, BOS_ID, OFFSET
from .distributed import world_info
from .documents import (
    DataError,
    DataStats,
    add_document,
    is_binary,
    read_documents,
    read_hf_dataset,
    split_documents,
)

__all__ = [
    "DataError",
    "DataStats",
    "ByteDataset",
    "BucketBatchSampler",
    "collate_batch",
    "is_binary",
    "iter_from",
    "make_loader",
    "read_documents",
    "read_hf_dataset",
    "set_epoch",
    "split_documents",
]

def _as_bytes(text: str | bytes | bytearray) -> bytes:
    if isinstance(text, str):
        return text.encode("utf-8", errors="surrogatepass")
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise TypeError(f"ByteDataset: expected str or bytes documents, got {type(text).__name__}")


class ByteDataset(Dataset):
    """Windows of `max_length` ids (BOS + up to `max_length - 1` bytes) over documents.

    mode="train": item i is a random contiguous window from a document; documents get as many
      items as they have non-overlapping windows, so an epoch sees about every byte once. The
      window start depends only on (seed, epoch, i): resuming and multi-process runs see the
      same data. Call `set_epoch` to draw new windows.
    mode="eval": the fixed, non-overlapping windows covering every document exactly once.

    Documents shorter than `min_length` bytes (and empty ones) are skipped and counted in
    `self.stats`; with `report_stats=True` a summary is kept in `self.report` for the caller to
    print (library code does not print).
    """

    def __init__(
        self,
        texts: Iterable[str | bytes],
        max_length: int,
        min_length: int = 1,
        report_stats: bool = False,
        *,
        mode: str = "train",
        seed: int = 0,
    ) -> None:
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"ByteDataset: max_length must be an integer >= 2 (BOS + 1 byte), got {max_length!r}")
        if not isinstance(min_length, int) or min_length < 1:
            raise ValueError(f"ByteDataset: min_length must be an integer >= 1, got {min_length!r}")
        if mode not in ("train", "eval"):
            raise ValueError(f"ByteDataset: mode must be 'train' or 'eval', got {mode!r}")
        self.max_length = max_length
        self.min_length = min_length
        self.mode = mode
        self.seed = seed
        self.epoch = 0
        self.stats = DataStats()
        self.docs: list[bytes] = []
        for t in texts:
            add_document(_as_bytes(t), min_length, self.stats, self.docs)
        span = max_length - 1
        # (doc, first window index) table: item i belongs to the doc whose range holds i
        self._doc_of_item: list[int] = []
        self._window_of_item: list[int] = []
        for d, doc in enumerate(self.docs):
            n = math.ceil(len(doc) / span)
            self._doc_of_item.extend([d] * n)
            self._window_of_item.extend(range(n))
        self.report = self._describe() if report_stats else None

    def _describe(self) -> str:
        lengths = sorted(len(d) for d in self.docs)
        if not lengths:
            return f"ByteDataset ({self.mode}): empty ({self.stats.summary()})"
        median = lengths[len(lengths) // 2]
        return (f"ByteDataset ({self.mode}): {len(self)} windows of <= {self.max_length - 1} bytes; "
                f"{self.stats.summary()}; document bytes min {lengths[0]}, median {median}, max {lengths[-1]}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._doc_of_item)

    @property
    def num_bytes(self) -> int:
        return self.stats.bytes

    def item_length(self, i: int) -> int:
        """Number of ids item i will have (for length bucketing), without building it."""
        doc = self.docs[self._doc_of_item[i]]
        span = self.max_length - 1
        if self.mode == "eval":
            start = self._window_of_item[i] * span
            return 1 + min(span, len(doc) - start)
        return 1 + min(span, len(doc))

    def window(self, i: int) -> bytes:
        if not 0 <= i < len(self):
            raise IndexError(i)
        doc = self.docs[self._doc_of_item[i]]
        span = self.max_length - 1
        if self.mode == "eval":
            start = self._window_of_item[i] * span
            return doc[start:start + span]
        if len(doc) <= span:
            return doc
        # a per-item generator: independent of worker order, process count and resume point
        rng = random.Random((self.seed * 1_000_003 + self.epoch) * 1_000_000_007 + i)
        start = rng.randrange(len(doc) - span + 1)
        return doc[start:start + span]

    def __getitem__(self, i: int) -> torch.Tensor:
        w = self.window(i)
        ids = torch.empty(len(w) + 1, dtype=torch.long)
        ids[0] = BOS_ID
        if w:
            ids[1:] = torch.frombuffer(bytearray(w), dtype=torch.uint8).long() + OFFSET
        return ids


def collate_batch(batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """Right-pad a list of 1-D id tensors with BOE (id 0, ignored by the loss) -> Long[B, T]."""
    if not batch:
        raise ValueError("collate_batch: empty batch")
    width = max(int(x.numel()) for x in batch)
    out = torch.full((len(batch), width), BOE_ID, dtype=torch.long)
    for row, x in enumerate(batch):
        out[row, : x.numel()] = x
    return out


class BucketBatchSampler(Sampler[list[int]]):
    """Deterministic batches for training and evaluation, sharded across processes.

    Global batches of `batch_size * world_size` items are drawn (shuffled by (seed, epoch) when
    `shuffle`); process `rank` takes its contiguous slice, so N processes with batch b see exactly
    the examples one process with batch N*b sees. With `bucket=True`, items are sorted by length
    inside pools of 50 global batches so that batches hold similar lengths (less padding).
    `skip` batches at the start of the next iteration are dropped without loading them (resume).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, bucket: bool = False, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} not in [0, {world_size})")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.bucket = bucket
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _global_batches(self) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        rng = random.Random(self.seed * 7919 + self.epoch)
        if self.shuffle:
            rng.shuffle(order)
        g = self.batch_size * self.world_size
        if self.bucket:
            pool = g * 50
            pooled = []
            for s in range(0, len(order), pool):
                pooled.extend(sorted(order[s:s + pool], key=lambda i: self.lengths[i]))
            order = pooled
        batches = [order[s:s + g] for s in range(0, len(order), g)]
        if batches and len(batches[-1]) < g and (self.drop_last or len(batches[-1]) < self.world_size):
            batches.pop()  # every rank needs at least one item, or DDP would hang
        if self.bucket and self.shuffle:
            rng.shuffle(batches)
        return batches

    def _shard(self, batch: list[int]) -> list[int]:
        # contiguous, non-empty slices whenever len(batch) >= world_size
        n, w, r = len(batch), self.world_size, self.rank
        return batch[r * n // w:(r + 1) * n // w]

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for b in self._global_batches()[skip:]:
            yield self._shard(b)

    def __len__(self) -> int:
        return len(self._global_batches())


def make_loader(dataset: ByteDataset, batch_size: int, *, train: bool, seed: int = 0,
                rank: int | None = None, world_size: int | None = None) -> DataLoader:
    """A DataLoader with deterministic, resumable, per-process batches (see `BucketBatchSampler`)."""
    r, w = world_info()
    rank = r if rank is None else rank
    world_size = w if world_size is None else world_size
    lengths = [dataset.item_length(i) for i in range(len(dataset))]
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=train, seed=seed, rank=rank,
                                 world_size=world_size, bucket=train, drop_last=train)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_batch)


def set_epoch(loader: Iterable, epoch: int) -> None:
    """Tell the loader's sampler and dataset which epoch starts (new shuffles and windows)."""
    for obj in (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None),
                getattr(loader, "dataset", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


def iter_from(loader: Iterable, skip: int) -> Iterator[torch.Tensor]:
    """The loader's batches after the first `skip` (where a resumed run left off)."""
    bs = getattr(loader, "batch_sampler", None)
    if skip and isinstance(bs, BucketBatchSampler):
        bs.skip = skip  # skip without building the batches
        return iter(loader)
    it = iter(loader)
    for _ in range(skip):
        next(it, None)
    return it
