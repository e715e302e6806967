"""Fine-tuning data: plain text and JSON Lines with a `text` field (every byte scored) or
`prompt`/`completion` pairs (only the completion scored).

A fine-tuning batch is Long[B, 2, T]: row 0 the ids the model reads, row 1 the same ids with
every position that must not be scored (prompt bytes, padding) set to BOE, so `lm_loss` and the
byte counts, which ignore BOE targets, score the completions only. `split_batch` turns either
kind of batch (Long[B, T] or Long[B, 2, T]) into (ids, scored ids).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..ids import BOE_ID, BOS_ID, OFFSET
from .data import BucketBatchSampler, ByteDataset
from .distributed import world_info
from .documents import (
    DataError,
    DataStats,
    _expand,
    _read_file,
    add_document,
    is_binary,
    read_documents,
)

__all__ = ["FinetuneData", "FinetuneDataset", "make_pair_loader", "read_finetune_data", "split_batch",
           "split_examples"]

Example = tuple[bytes, bytes]  # (prompt, completion)


def split_batch(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Long[B, T] or Long[B, 2, T] -> (ids the model reads, ids whose non-BOE targets are scored)."""
    if batch.dim() == 3:
        return batch[:, 0], batch[:, 1]
    return batch, batch


class FinetuneData:
    """Documents (whole-text loss) and prompt/completion examples, with what was skipped."""

    def __init__(self) -> None:
        self.texts: list[bytes] = []
        self.examples: list[Example] = []
        self.stats = DataStats()


def _utf8(value: str) -> bytes:
    return value.encode("utf-8", errors="surrogatepass")


def _json_lines(raw: bytes) -> Iterator[Any]:
    """The JSON value of every non-blank line; None for a line that is not JSON."""
    for line in filter(bytes.strip, raw.splitlines()):
        try:
            yield json.loads(line)
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            yield None


def _read_jsonl(path: Path, raw: bytes, out: FinetuneData) -> None:
    before = len(out.texts) + len(out.examples)
    for obj in _json_lines(raw):
        if isinstance(obj, dict) and isinstance(obj.get("text"), str):
            add_document(_utf8(obj["text"]), 1, out.stats, out.texts)
        elif (isinstance(obj, dict) and isinstance(obj.get("prompt"), str)
              and isinstance(obj.get("completion"), str) and obj["completion"]):
            out.examples.append((_utf8(obj["prompt"]), _utf8(obj["completion"])))
            out.stats.documents += 1
            out.stats.bytes += len(_utf8(obj["prompt"])) + len(_utf8(obj["completion"]))
        else:
            out.stats.skipped_jsonl_lines += 1
    if len(out.texts) + len(out.examples) == before:
        out.stats.skipped_paths.append(str(path))


def read_finetune_data(sources: str | os.PathLike | Sequence[str | os.PathLike], *,
                       allow_binary: bool = False) -> FinetuneData:
    """Read text files, directories, globs and .jsonl files (lines with `text`, or `prompt` and a
    non-empty `completion`); other lines are skipped and counted. Raises DataError naming the
    sources when nothing usable is found."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    out = FinetuneData()
    for source in sources:
        source = os.fspath(source)
        if source.startswith("hf:"):  # the training readers know datasets
            docs, stats = read_documents(source)
            out.texts += docs
            out.stats.merge(stats)
            continue
        for path in _expand(source):
            raw = _read_file(path)
            out.stats.files += 1
            if path.suffix.lower() == ".jsonl":
                _read_jsonl(path, raw, out)
            elif raw and not allow_binary and is_binary(raw):
                out.stats.skipped_binary += 1
                out.stats.skipped_paths.append(str(path))
            else:
                add_document(raw, 1, out.stats, out.texts)
    if not out.texts and not out.examples:
        names = ", ".join(os.fspath(s) for s in sources) or "(none)"
        raise DataError(f"{names}: no usable documents or prompt/completion lines ({out.stats.summary()})")
    return out


def split_examples(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out about `fraction` of the examples (at least one when there are two or more)."""
    if len(examples) < 2:
        return list(examples), []
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_valid = max(1, int(len(examples) * fraction))
    held = set(order[:n_valid])
    return ([e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held])


class FinetuneDataset(Dataset):
    """Windows over documents (as `ByteDataset`, mode train or eval) then one item per example;
    every item is Long[2, L]: (ids, scored ids), BOS first."""

    def __init__(self, texts: list[bytes], examples: list[Example], max_length: int, *, mode: str = "train",
                 seed: int = 0) -> None:
        self.windows = ByteDataset(texts, max_length, 1, mode=mode, seed=seed)
        self.examples = examples
        self.max_length = max_length

    def set_epoch(self, epoch: int) -> None:
        self.windows.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.windows) + len(self.examples)

    @property
    def num_bytes(self) -> int:
        return self.windows.num_bytes + sum(len(c) for _, c in self.examples)

    def _fit(self, i: int) -> Example:
        """The example cut to the window: the prompt loses its start, then the completion its end."""
        prompt, completion = self.examples[i]
        span = self.max_length - 1
        completion = completion[:span]
        keep = span - len(completion)
        return (prompt[len(prompt) - keep:] if keep else b""), completion

    def item_length(self, i: int) -> int:
        if i < len(self.windows):
            return self.windows.item_length(i)
        prompt, completion = self._fit(i - len(self.windows))
        return 1 + len(prompt) + len(completion)

    def __getitem__(self, i: int) -> torch.Tensor:
        if i < len(self.windows):
            ids = self.windows[i]
            return torch.stack([ids, ids])
        prompt, completion = self._fit(i - len(self.windows))
        ids = torch.tensor([BOS_ID, *(b + OFFSET for b in prompt + completion)], dtype=torch.long)
        scored = ids.clone()
        scored[1:1 + len(prompt)] = BOE_ID  # the prompt's bytes are read, never predicted
        return torch.stack([ids, scored])


def collate_pairs(batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """Right-pad [2, L] items with BOE (never scored) -> Long[B, 2, T]."""
    if not batch:
        raise ValueError("collate_pairs: empty batch")
    width = max(int(x.shape[1]) for x in batch)
    out = torch.full((len(batch), 2, width), BOE_ID, dtype=torch.long)
    for row, x in enumerate(batch):
        out[row, :, : x.shape[1]] = x
    return out


def make_pair_loader(dataset: FinetuneDataset, batch_size: int, *, train: bool, seed: int = 0) -> DataLoader:
    """Deterministic, resumable batches sharded over the processes (as `make_loader`)."""
    rank, world = world_info()
    lengths = [dataset.item_length(i) for i in range(len(dataset))]
    if train and len(lengths) < batch_size * world:
        raise DataError(f"{len(lengths)} training items for a global batch of {batch_size * world}; "
                        "lower --batch-size or add data")
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=train, seed=seed, rank=rank, world_size=world,
                                 bucket=train, drop_last=train)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs)
