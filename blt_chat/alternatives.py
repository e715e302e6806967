"""Every byte's alternatives (issue 17): for each byte of an inspected text, the BLT's and the
entropy model's top 5 next-byte candidates with their probabilities (float16, about 30 bytes
per byte), the BLT's entropy and its surprisal of the actual byte. Pure logic and formatting;
blt_chat/service.py computes them in one pass."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from rich.text import Text

from blt_model.ids import BOS_ID, EOS_ID, OFFSET, PAD_ID

TOP_K = 5


@dataclass
class Alternatives:
    blt_ids: torch.Tensor  # Int16[n, k]: model ids (byte + OFFSET, or a special id)
    blt_p: torch.Tensor  # Float16[n, k]
    em_ids: torch.Tensor  # Int16[n, k]: the entropy model's
    em_p: torch.Tensor  # Float16[n, k]
    blt_entropy: list[float]  # nats, of the BLT's distribution for each byte
    surprisal: list[float]  # bits, -log2 p_BLT(actual byte)

    def __len__(self) -> int:
        return len(self.surprisal)


def id_label(token_id: int) -> str:
    """A candidate as one short, safe label: 'a', '␠', '\\n', '0xe2', '<EOS>'."""
    specials = {BOS_ID: "<BOS>", EOS_ID: "<EOS>", PAD_ID: "<PAD>"}
    if token_id < OFFSET:
        return specials.get(token_id, f"<{token_id}>")
    b = token_id - OFFSET
    if b == 32:
        return "␠"
    if 33 <= b < 127:
        return chr(b)
    return {10: "\\n", 9: "\\t", 13: "\\r"}.get(b, f"0x{b:02x}")


def char_span(data: bytes, i: int) -> tuple[int, int]:
    """(start, end) of the UTF-8 character byte i belongs to (a lone invalid byte: itself)."""
    start = i
    while start > 0 and i - start < 3 and 0x80 <= data[start] < 0xC0:
        start -= 1
    lead = data[start]
    need = 2 if 0xC0 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4 if 0xF0 <= lead < 0xF8 else 1
    end = start + need
    if need > 1 and end <= len(data) and i < end:
        try:
            data[start:end].decode("utf-8")
            return start, end
        except UnicodeDecodeError:
            pass
    return i, i + 1


def panel_text(data: bytes, i: int, alt: Alternatives, entropy: float, patch: tuple[int, int, int]) -> Text:
    """The selected byte's panel: the byte, its patch, entropies, surprisal, both top-5 lists."""
    b = data[i]
    t = Text()
    t.append(f"byte {i}: {id_label(b + OFFSET)} (0x{b:02x})", style="bold")
    start, end = char_span(data, i)
    if end - start > 1:
        ch = data[start:end].decode("utf-8")
        t.append(f" · {ch!r} U+{ord(ch):04X}, {i - start + 1} of {end - start}")
    index, p_start, p_len = patch
    t.append(f"\npatch #{index} (start {p_start}, length {p_len})\n")
    h = entropy if math.isfinite(entropy) else float("nan")
    t.append(f"surprisal {alt.surprisal[i]:.2f} bits · H {h:.2f} nats, BLT's {alt.blt_entropy[i]:.2f}\n")
    t.append(f"{'BLT top 5':<18}entropy model top 5\n", style="dim")
    for r in range(alt.blt_ids.shape[1]):
        for ids, ps in ((alt.blt_ids, alt.blt_p), (alt.em_ids, alt.em_p)):
            tid, p = int(ids[i, r]), float(ps[i, r])
            cell = f"{id_label(tid):>6} {100 * p:6.2f}%"
            t.append(f"{cell:<18}", style="bold #ffd75f" if tid == b + OFFSET else "")
        t.append("\n")
    return t
