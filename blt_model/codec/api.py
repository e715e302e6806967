"""The model as a compressor: `compress` / `decompress` bytes, and their file versions.

    from blt_model import load_model
    from blt_model.codec import compress, decompress
    model = load_model("assets/models/blt-tiny-en")
    blob = compress(model, data)             # chunks of 1023 bytes, 32 coded at once
    assert decompress(model, blob) == data

The input is cut into chunks (each coded from BOS, no context across chunks) and `batch_size`
chunks are coded together through the batched exact engine (coder.py); the container
(container.py) records the layout, the model's identity and the platform (identity.py).
Decompression refuses another model, a damaged or truncated stream and an unknown version with
a `CodecError` (one line); platform differences are passed to `warn` before decoding starts;
a chunk whose CRC32 does not match is named. Nothing here prints.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import PatchingConfig
from ..guards import read_regular_file
from ..io.files import atomic_write_bytes
from ..nn.model import BLT
from .coder import DamagedStream, Progress, decode_group, encode_group, fixed_threads
from .container import CodecError, Container, Header, chunk_spans, pack, unpack
from .identity import model_identity, platform_differences, platform_record

__all__ = ["DEFAULT_BATCH_SIZE", "compress", "compress_file", "decompress", "decompress_file", "default_chunk_size",
           "read_header"]

DEFAULT_BATCH_SIZE = 32


def default_chunk_size(model: BLT) -> int:
    """Twice the context the model was trained on, less BOS (1023 bytes for the shipped model).
    Longer chunks pay less per chunk (4 bytes of CRC32 and a cold start from BOS): on 16 KB of
    en_broad the shipped model codes 2.18 bits per byte in chunks of 511 bytes, 2.17 in 1023
    and 2.16 in 2047, so it still gains from context past its training length; 1023 keeps 32
    chunks in 32 KB for the batch."""
    return max(1, 2 * model.config.max_position_embeddings - 1)


def compress(model: BLT, data: bytes, *, chunk_size: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
             threads: int = 1, progress: Progress | None = None) -> bytes:
    """`data` -> a compressed container. `threads`: torch's thread count while coding (the
    decoder uses the same, from the header). `progress(n)`: n more bytes coded."""
    chunk_size = default_chunk_size(model) if chunk_size is None else chunk_size
    for name, v in (("chunk_size", chunk_size), ("batch_size", batch_size), ("threads", threads)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
    data = bytes(data)
    model.eval()
    header = Header(model_identity(model), model.config.patching.to_dict(), chunk_size, batch_size, len(data),
                    platform_record(model, threads))
    chunks = [data[s:e] for s, e in chunk_spans(len(data), chunk_size)]
    streams = []
    with fixed_threads(threads):
        for g in range(0, len(chunks), batch_size):
            streams.append(encode_group(model, model.config.patching, chunks[g: g + batch_size], progress))
    payload = np.concatenate(streams) if streams else np.zeros(0, dtype=np.uint32)
    crcs = [zlib.crc32(c) for c in chunks]
    return pack(Container(header, [len(s) for s in streams], crcs, payload))


def read_header(blob: bytes, name: str = "stream") -> Header:
    """The header of a compressed stream (checked as `decompress` checks it)."""
    return unpack(blob, name).header


def decompress(model: BLT, blob: bytes, *, progress: Progress | None = None,
               warn: Callable[[str], None] | None = None, name: str = "stream") -> bytes:
    """A container from `compress` -> the original bytes, or CodecError naming `name`."""
    c = unpack(blob, name)
    h = c.header
    if h.model_sha256 != model_identity(model):
        raise CodecError(f"{name}: compressed with another model (sha256 {h.model_sha256[:12]}, this one is "
                         f"{model_identity(model)[:12]}); decompress it with --model set to that model")
    try:
        patching = PatchingConfig.from_dict(h.patching)
    except (TypeError, ValueError) as e:
        raise CodecError(f"{name}: corrupt header (patching: {e})") from None
    threads = h.platform.get("threads", 1)
    if not isinstance(threads, int) or not 1 <= threads <= 4096:
        raise CodecError(f"{name}: corrupt header (thread count {threads!r})")
    diffs = platform_differences(h.platform, platform_record(model, threads))
    if diffs and warn is not None:
        warn(f"{name} was compressed on another platform ({'; '.join(diffs)}); the probabilities may "
             "differ, which a CRC mismatch would show")
    model.eval()
    spans = chunk_spans(h.original_length, h.chunk_size)
    out = []
    with fixed_threads(threads):
        for g in range(h.num_groups):
            first = g * h.batch_size
            group = spans[first: first + h.batch_size]
            out.extend(_decode_checked(model, patching, c, g, first, group, name, progress))
    return b"".join(out)


def _decode_checked(model: BLT, patching: PatchingConfig, c: Container, g: int, first: int,
                    spans: list[tuple[int, int]], name: str, progress: Progress | None) -> list[bytes]:
    """Decode group g (chunks first, first + 1, ...) and check each chunk's CRC32."""
    try:
        chunks = decode_group(model, patching, [e - s for s, e in spans], c.group_stream(g), progress)
    except DamagedStream:
        raise CodecError(f"{name}: corrupt stream in chunks {first}-{first + len(spans) - 1} "
                         f"(bytes {spans[0][0]}-{spans[-1][1] - 1}); the range decoder rejected it") from None
    for i, (chunk, (s, e)) in enumerate(zip(chunks, spans)):
        if zlib.crc32(chunk) != c.crcs[first + i]:
            raise CodecError(f"{name}: chunk {first + i} (bytes {s}-{e - 1}) fails its CRC32 check: the stream "
                             "is corrupt, or this platform computes different probabilities")
    return chunks


def _check_output(dst: Path, force: bool) -> None:
    if dst.exists() and not force:
        raise ValueError(f"{dst}: already exists; pass --force to overwrite it")
    if dst.is_dir():
        raise ValueError(f"{dst}: is a directory")


def compress_file(model: BLT, src: str | Path, dst: str | Path, *, force: bool = False, **options) -> int:
    """Compress file `src` into `dst` (written atomically) -> the compressed size in bytes.
    `options`: as `compress`."""
    dst = Path(dst)
    _check_output(dst, force)
    blob = compress(model, read_regular_file(src), **options)
    atomic_write_bytes(dst, blob)
    return len(blob)


def decompress_file(model: BLT, src: str | Path, dst: str | Path, *, force: bool = False, **options) -> int:
    """Decompress `src` into `dst`; nothing is written unless every chunk checks out. -> bytes written."""
    dst = Path(dst)
    _check_output(dst, force)
    data = decompress(model, read_regular_file(src), name=str(src), **options)
    atomic_write_bytes(dst, data)
    return len(data)
