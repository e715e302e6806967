"""The compressed file format (version 1). All integers little-endian.

    magic      4 bytes  b"BLTz"
    version    1 byte   FORMAT_VERSION
    header     u32 length, then zlib-compressed UTF-8 JSON: model identity, patching config, chunk size, batch
               size, original length, and what the probabilities depend on (torch version,
               dtype, device, CPU, thread count)
    groups     u32 per batch group: the 32-bit words of its range-coded stream
    chunk CRCs u32 per chunk: CRC32 of the chunk's original bytes
    check      u32 CRC32 of everything above (a damaged header or table is caught here)
    payload    the groups' streams, one after the other, as u32 words

A group is `batch_size` consecutive chunks coded together: one range coder, symbols interleaved
position by position (row 0, row 1, ... of each step), so a decoder must use the same layout.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["FORMAT_VERSION", "MAGIC", "CodecError", "Container", "Header", "chunk_spans", "pack", "unpack"]

MAGIC = b"BLTz"
FORMAT_VERSION = 1
_MAX_HEADER = 1 << 20  # a header is a few hundred bytes; more means a damaged length field


class CodecError(ValueError):
    """A stream that cannot be decoded (one line: what is wrong and what to do)."""


@dataclass
class Header:
    model_sha256: str  # identity of the model: hash of its config and weights (identity.py)
    patching: dict[str, Any]  # the PatchingConfig the probabilities were computed with
    chunk_size: int  # bytes per chunk (each coded from BOS, no context across chunks)
    batch_size: int  # chunks per group, coded together
    original_length: int
    platform: dict[str, Any] = field(default_factory=dict)  # torch, dtype, device, cpu, threads

    @property
    def num_chunks(self) -> int:
        return -(-self.original_length // self.chunk_size)

    @property
    def num_groups(self) -> int:
        return -(-self.num_chunks // self.batch_size)


@dataclass
class Container:
    header: Header
    group_words: list[int]  # words per group
    crcs: list[int]  # per chunk
    payload: np.ndarray  # uint32 words of every group, concatenated

    def group_stream(self, g: int) -> np.ndarray:
        start = sum(self.group_words[:g])
        return self.payload[start: start + self.group_words[g]]


def chunk_spans(length: int, chunk_size: int) -> list[tuple[int, int]]:
    """(start, end) of each chunk of `length` bytes."""
    return [(s, min(s + chunk_size, length)) for s in range(0, length, chunk_size)]


def pack(c: Container) -> bytes:
    """The container as bytes."""
    head = zlib.compress(json.dumps(asdict(c.header), sort_keys=True, separators=(",", ":")).encode("utf-8"), 9)
    parts = [MAGIC, struct.pack("<BI", FORMAT_VERSION, len(head)), head,
             np.asarray(c.group_words, dtype="<u4").tobytes(), np.asarray(c.crcs, dtype="<u4").tobytes()]
    front = b"".join(parts)
    return front + struct.pack("<I", zlib.crc32(front)) + np.asarray(c.payload, dtype="<u4").tobytes()


def unpack(data: bytes, name: str = "stream") -> Container:
    """Parse and check a container; CodecError naming `name` when it is not a valid one."""
    if len(data) < 4 and data and MAGIC.startswith(data):
        raise CodecError(f"{name}: truncated ({len(data)} bytes, the header is cut off)")
    if data[:4] != MAGIC:
        raise CodecError(f"{name}: not a blt compressed file (no {MAGIC.decode()} magic at the start)")
    if len(data) < 9:
        raise CodecError(f"{name}: truncated ({len(data)} bytes, the header is cut off)")
    version, head_len = struct.unpack_from("<BI", data, 4)
    if version != FORMAT_VERSION:
        raise CodecError(f"{name}: format version {version} is not supported (this blt reads version "
                         f"{FORMAT_VERSION}); decompress it with the blt that wrote it")
    if head_len > _MAX_HEADER:
        raise CodecError(f"{name}: corrupt header (length {head_len})")
    if len(data) < 9 + head_len:
        raise CodecError(f"{name}: truncated ({len(data)} bytes, the header is cut off)")
    header = _parse_header(data[9: 9 + head_len], name)
    pos = 9 + head_len
    n_groups, n_chunks = header.num_groups, header.num_chunks
    end_tables = pos + 4 * (n_groups + n_chunks)
    if len(data) < end_tables + 4:
        raise CodecError(f"{name}: truncated ({len(data)} bytes, the header is cut off)")
    (check,) = struct.unpack_from("<I", data, end_tables)
    if zlib.crc32(data[:end_tables]) != check:
        raise CodecError(f"{name}: corrupt header (its checksum does not match)")
    groups = np.frombuffer(data, dtype="<u4", count=n_groups, offset=pos).astype(np.int64).tolist()
    crcs = np.frombuffer(data, dtype="<u4", count=n_chunks, offset=pos + 4 * n_groups).tolist()
    body = data[end_tables + 4:]
    want = 4 * sum(groups)
    if len(body) < want:
        raise CodecError(f"{name}: truncated ({len(body)} of {want} payload bytes)")
    if len(body) > want:
        raise CodecError(f"{name}: corrupt ({len(body) - want} bytes after the end of the stream)")
    return Container(header, groups, crcs, np.frombuffer(body, dtype="<u4").astype(np.uint32))


def _parse_header(raw: bytes, name: str) -> Header:
    try:
        fields = json.loads(zlib.decompress(raw).decode("utf-8"))
        header = Header(**fields)
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, TypeError, RecursionError):
        raise CodecError(f"{name}: corrupt header (not the JSON this format writes)") from None
    ints = (header.chunk_size, header.batch_size, header.original_length)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints) or min(ints[:2]) < 1 or ints[2] < 0:
        raise CodecError(f"{name}: corrupt header (chunk size, batch size or length out of range)")
    if not isinstance(header.patching, dict) or not isinstance(header.platform, dict):
        raise CodecError(f"{name}: corrupt header (patching or platform is not an object)")
    return header
