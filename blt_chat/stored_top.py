"""Every answer byte's alternatives in a conversation file: compact columns for store.py.

Per byte and model, k candidate ids and their float16 probabilities, plus the BLT's entropy and
its probability of the byte itself (float16): with k = 5 that is 2 x (5 + 10) + 4 = 34 bytes per
byte before base64. Candidate ids are kept as one byte each; the few above 255 (the model's ids
of bytes 252-255) are listed apart in `special`. A candidate the engine did not
report (no entropy-model logits in compiled steps) has probability NaN and is left out again on
reading. Plain Python (no torch, not even through blt_model): tested directly.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Sequence
from typing import Any

from .conversation import StoredTop


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def pack_tops(records: Sequence[Any]) -> dict[str, Any] | None:
    """The `top` column of an answer whose records carry StoredTop (None when none does)."""
    tops = [getattr(r, "top", None) for r in records]
    if not any(t is not None for t in tops):
        return None
    k = max(max(len(t.blt_ids), len(t.entropy_ids)) for t in tops if t is not None)
    ids, probs, special, has = bytearray(), [], [], []
    for t in tops:
        has.append("0" if t is None else "1")
        columns = ((t.blt_ids, t.blt_probs), (t.entropy_ids, t.entropy_probs)) if t else (((), ()),) * 2
        for cand, ps in columns:
            for j in range(k):
                i = cand[j] if j < len(cand) else None
                if i is not None and i > 255:
                    special.append([len(ids), i])
                ids.append(0 if i is None else i & 0xFF)
                probs.append(ps[j] if i is not None else math.nan)
        probs += [t.blt_entropy, t.actual_prob] if t else [math.nan, math.nan]
    return {"k": k, "has": "".join(has), "ids": _b64(bytes(ids)), "special": special,
            "p": _b64(struct.pack(f"<{len(probs)}e", *probs))}


def unpack_tops(doc: Any, n: int) -> list[StoredTop | None]:
    """The alternatives of an answer's n bytes from its `top` column; all None when the column
    is missing or does not fit (an older file, or a damaged one: the answer itself still opens)."""
    try:
        k, has = int(doc["k"]), doc["has"]
        ids = bytearray(base64.b64decode(doc["ids"], validate=True))
        raw = base64.b64decode(doc["p"], validate=True)
        if not (0 < k <= 256 and isinstance(has, str) and len(has) == n and len(ids) == n * 2 * k
                and len(raw) == 2 * n * (2 * k + 2)):
            return [None] * n
        probs = struct.unpack(f"<{len(raw) // 2}e", raw)
        model_ids = list(ids)
        for index, token in doc["special"]:
            model_ids[int(index)] = int(token)
    except (KeyError, TypeError, ValueError, IndexError, struct.error):
        return [None] * n
    out: list[StoredTop | None] = []
    for b in range(n):
        if has[b] != "1":
            out.append(None)
            continue
        row_ids, row_p = model_ids[b * 2 * k:(b + 1) * 2 * k], probs[b * (2 * k + 2):(b + 1) * (2 * k + 2)]
        kept = [[(i, p) for i, p in zip(row_ids[m * k:(m + 1) * k], row_p[m * k:(m + 1) * k])
                 if not math.isnan(p)] for m in (0, 1)]
        out.append(StoredTop(tuple(i for i, _ in kept[0]), tuple(p for _, p in kept[0]),
                             tuple(i for i, _ in kept[1]), tuple(p for _, p in kept[1]),
                             row_p[-2], row_p[-1]))
    return out
