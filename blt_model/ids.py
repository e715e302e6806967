"""The id layout shared with Meta's released BLT checkpoints.

0 = BOE (padding / beginning of example), 1 = BOS, 2 = EOS, 3 = PAD (reserved);
byte value b is id b + 4. 260 ids in all.
"""

from __future__ import annotations

from collections.abc import Iterable

BOE_ID = 0
BOS_ID = 1
EOS_ID = 2
PAD_ID = 3
OFFSET = 4
VOCAB_SIZE = 260


def encode(data: str | bytes, add_bos: bool = True, add_eos: bool = False) -> list[int]:
    """Text (UTF-8) or raw bytes -> ids, with BOS first by default."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    ids = [b + OFFSET for b in raw]
    if add_bos:
        ids.insert(0, BOS_ID)
    if add_eos:
        ids.append(EOS_ID)
    return ids


def decode(ids: Iterable[int]) -> bytes:
    """Ids -> bytes; special ids (BOE, BOS, EOS, PAD) are dropped."""
    return bytes(int(i) - OFFSET for i in ids if int(i) >= OFFSET)


def decode_text(ids: Iterable[int]) -> str:
    """Ids -> text; bytes that are not valid UTF-8 become U+FFFD, never an exception."""
    return decode(ids).decode("utf-8", errors="replace")


def is_byte(i: int) -> bool:
    return OFFSET <= int(i) < VOCAB_SIZE
