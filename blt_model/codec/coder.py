"""Range coding of byte chunks with a BLT's next-byte distribution, one batch group at a time.

A group is up to `batch_size` chunks stepped together through one `BatchedState` (the batched
exact engine): every step gives each chunk's next-byte logits, which `frequencies` turns into
integer frequencies, and one range coder (constriction's `RangeEncoder`, a queue: first in,
first out) codes the step's bytes, row 0 first. The decoder replays the same steps and feeds
each decoded byte back. Chunks shorter than the group's longest (the file's last chunk) feed
byte 0 after their end, on both sides, so the batch stays the same shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..config import PatchingConfig
from ..ids import BOS_ID, OFFSET
from ..inference.batch import BatchedState
from ..nn.model import BLT
from .container import CodecError

__all__ = ["FREQUENCY_TOTAL", "INSTALL_HINT", "DamagedStream", "decode_group", "encode_group", "fixed_threads", "frequencies"]

FREQUENCY_TOTAL = 1 << 20  # about the sum of one distribution's integer frequencies
INSTALL_HINT = "pip install 'blt-chat[compress]' (or: pip install constriction)"

Progress = Callable[[int], None]  # called with the number of bytes coded since the last call


def _constriction():
    try:
        import constriction
    except ImportError:
        raise CodecError(f"compression needs the constriction library: {INSTALL_HINT}") from None
    return constriction


def frequencies(logits: torch.Tensor) -> np.ndarray:
    """logits [n, 260] -> [n, 256] integer frequencies (as float64) of the 256 byte values.

    The one quantisation both sides share: softmax over the byte ids only (BOS, EOS and the
    other special ids cannot occur in data), in float64 with numpy, then
    floor(p * (FREQUENCY_TOTAL - 256)) + 1, so every byte value keeps a frequency >= 1 and any
    input, binary or invalid UTF-8, can be coded. The range coder normalises the total."""
    z = logits[:, OFFSET: OFFSET + 256].detach().float().cpu().numpy().astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return np.floor(p * (FREQUENCY_TOTAL - 256)) + 1.0


@contextlib.contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count fixed while coding (results may depend on it)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


Choose = Callable[[np.ndarray, list[int], int], "np.ndarray | list[int]"]


def _run_group(model: BLT, patching: PatchingConfig, lengths: list[int], choose: Choose,
               progress: Progress | None) -> list[bytearray]:
    """Step the group's chunks together; at step t, `choose(freqs, active rows, t)` gives the
    bytes at position t of the rows still inside their chunk -> each row's bytes."""
    B = len(lengths)
    state = BatchedState(model, patching, B)
    out = [bytearray() for _ in range(B)]
    ids = [BOS_ID] * B
    for t in range(max(lengths)):
        logits, _, _ = state.step(ids)
        active = [b for b in range(B) if t < lengths[b]]
        freqs = frequencies(logits if len(active) == B else logits[active])
        for b, s in zip(active, choose(freqs, active, t)):
            out[b].append(int(s))
        ids = [out[b][t] + OFFSET if t < lengths[b] else OFFSET for b in range(B)]
        if progress is not None:
            progress(len(active))
    return out


def encode_group(model: BLT, patching: PatchingConfig, chunks: list[bytes],
                 progress: Progress | None = None) -> np.ndarray:
    """The group's chunks -> its range-coded stream (uint32 words)."""
    cs = _constriction()
    family = cs.stream.model.Categorical(perfect=False)
    encoder = cs.stream.queue.RangeEncoder()

    def choose(freqs: np.ndarray, active: list[int], t: int) -> np.ndarray:
        symbols = np.fromiter((chunks[b][t] for b in active), dtype=np.int32, count=len(active))
        encoder.encode(symbols, family, freqs)
        return symbols

    _run_group(model, patching, [len(c) for c in chunks], choose, progress)
    return np.asarray(encoder.get_compressed(), dtype=np.uint32)


def decode_group(model: BLT, patching: PatchingConfig, lengths: list[int], words: np.ndarray,
                 progress: Progress | None = None) -> list[bytes]:
    """A group's stream -> its chunks (their `lengths` known from the header)."""
    cs = _constriction()
    family = cs.stream.model.Categorical(perfect=False)
    decoder = cs.stream.queue.RangeDecoder(np.ascontiguousarray(words, dtype=np.uint32))

    def choose(freqs: np.ndarray, active: list[int], t: int) -> np.ndarray:
        try:
            return decoder.decode(family, freqs)
        except Exception as e:  # a damaged stream can break the decoder's invariants
            raise DamagedStream(str(e)) from None

    return [bytes(b) for b in _run_group(model, patching, lengths, choose, progress)]


class DamagedStream(Exception):
    """The range decoder rejected its stream (api.py names the group's chunks)."""
