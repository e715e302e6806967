"""Pure helpers for showing bytes: incremental UTF-8 decoding into glyphs, visible escapes for
control and invalid bytes, and the entropy colour scale. No Textual widgets, no model.

A *glyph* is one cell group on screen: a character, an escape such as ``\\x1b``, or a patch
boundary mark. Each glyph keeps the entropy bucket and patch parity of the bytes it came from, so
styles are computed at render time (and cached), never stored per byte.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from rich.cells import cell_len
from rich.style import Style
from textual.color import Color

from blt_model.entropy_scale import BUCKET_HEX, ENTROPY_MAX, N_BUCKETS, NO_BUCKET, entropy_bucket  # noqa: F401
from blt_model.guards import escape_char as _escape_char

# ----------------------------------------------------------------- entropy colour scale
# the scale itself is blt_model's (the command line's --show-patches uses it too)
BUCKET_COLORS: list[Color] = [Color.parse(c) for c in BUCKET_HEX]
MARK_GLYPH = "▏"

KIND_TEXT = 0
KIND_ESCAPE = 1
KIND_MARK = 2


def bucket_color(bucket: int) -> Color | None:
    return BUCKET_COLORS[bucket] if bucket >= 0 else None


def entropy_color(h: float | None) -> Color | None:
    return bucket_color(entropy_bucket(h))


def legend_segments() -> list[tuple[str, Style]]:
    """(text, style) pieces of the colour legend: calm ... hot, plus the patch mark."""
    out: list[tuple[str, Style]] = [("H 0", Style(dim=True))]
    for c in BUCKET_COLORS:
        out.append((" ", Style(bgcolor=c.rich_color)))
    out.append((f"{ENTROPY_MAX:g}+ nats ", Style(dim=True)))
    out.append((MARK_GLYPH, Style(color="#ff5fd7", bold=True)))
    out.append(("patch", Style(dim=True)))
    return out


# ----------------------------------------------------------------- escapes
def escape_char(ch: str) -> str | None:
    """The visible escape for a character that must not reach the terminal raw, else None:
    blt_model's one escaper, in its readable spelling (``\\e``, ``\\r``, ``\\u0085``)."""
    return _escape_char(ch, readable=True)


def visible_text(data: bytes, tab: str = "    ") -> str:
    """Bytes -> printable text (escapes for control/invalid bytes; newlines kept)."""
    out = []
    for ch in data.decode("utf-8", errors="surrogateescape"):
        if ch == "\n":
            out.append("\n")
        elif ch == "\t":
            out.append(tab)
        else:
            e = escape_char(ch)
            out.append(e if e is not None else ch)
    return "".join(out)


# ----------------------------------------------------------------- byte records and glyphs
class ByteLike(Protocol):
    byte: int | None
    entropy: float
    patch_start: bool
    patch_index: int


@dataclass
class ByteRecord:
    """What the view needs to know about one byte (blt_model's ByteEvent has these fields too)."""

    byte: int | None
    entropy: float = float("nan")
    patch_start: bool = False
    patch_index: int = 0
    prob: float = float("nan")
    bucket: int | None = None  # the colour bucket, when not the entropy's (the inspector's colour by)


class Glyph(NamedTuple):
    text: str
    width: int
    kind: int  # KIND_TEXT / KIND_ESCAPE / KIND_MARK
    bucket: int  # entropy bucket or NO_BUCKET
    parity: int  # patch index % 2, or -1 for plain text
    newline: bool = False
    recs: tuple = ()  # the records of the bytes this glyph shows (answers only): the byte cursor's


NEWLINE = Glyph("", 0, KIND_TEXT, NO_BUCKET, -1, True)


class GlyphDecoder:
    """Incremental bytes -> glyphs. Multi-byte characters come out whole once complete; invalid
    bytes come out as ``\\xNN`` escapes; a patch start inside a character marks the character."""

    def __init__(self, tab_width: int = 4) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._pending: list[ByteLike] = []
        self.tab_width = tab_width

    def reset(self) -> None:
        self._dec.reset()
        self._pending.clear()

    def feed(self, rec: ByteLike, out: list[Glyph]) -> None:
        if rec.byte is None:
            return
        self._pending.append(rec)
        s = self._dec.decode(bytes((rec.byte,)))
        if s:
            self._emit(s, out)

    def flush(self, out: list[Glyph]) -> None:
        s = self._dec.decode(b"", final=True)
        if s:
            self._emit(s, out)
        self._pending.clear()

    def _emit(self, s: str, out: list[Glyph]) -> None:
        pend = self._pending
        i = 0
        for ch in s:
            o = ord(ch)
            n = 1 if (0xDC80 <= o <= 0xDCFF or o < 0x80) else len(ch.encode("utf-8"))
            recs = pend[i:i + n] or pend[-1:]
            i += n
            first = recs[0]
            start = any(r.patch_start for r in recs)
            parity = first.patch_index % 2 if first.patch_index >= 0 else -1
            bucket = getattr(first, "bucket", None)
            if bucket is None:
                bucket = entropy_bucket(first.entropy)
            if start:
                out.append(Glyph(MARK_GLYPH, 1, KIND_MARK, NO_BUCKET, parity))
                if unicodedata.combining(ch):  # would combine with the mark: give it a base
                    out.append(Glyph("◌" + ch, 1, KIND_ESCAPE, bucket, parity, recs=tuple(recs)))
                    continue
            n_out = len(out)
            append_char(ch, out, bucket, parity, self.tab_width)
            if len(out) > n_out and not out[-1].newline:
                out[-1] = out[-1]._replace(recs=tuple(recs))
        del pend[:i]


def append_char(ch: str, out: list[Glyph], bucket: int = NO_BUCKET, parity: int = -1, tab_width: int = 4) -> None:
    if ch == "\n":
        out.append(NEWLINE)
        return
    if ch == "\t":
        out.append(Glyph(" " * tab_width, tab_width, KIND_TEXT, bucket, parity))
        return
    esc = escape_char(ch)
    if esc is not None:
        out.append(Glyph(esc, len(esc), KIND_ESCAPE, bucket, parity))
    else:
        out.append(Glyph(ch, cell_len(ch), KIND_TEXT, bucket, parity))


def text_glyphs(text: str, kind: int = KIND_TEXT) -> list[Glyph]:
    """Plain text (already str) -> glyphs with no entropy colouring."""
    out: list[Glyph] = []
    for ch in text:
        append_char(ch, out)
    return out


# ----------------------------------------------------------------- styles
class StyleBook:
    """Caches rich Styles per (kind, bucket, parity) for the current options and theme."""

    def __init__(self, show_entropy: bool = True, dark: bool = True) -> None:
        self.show_entropy = show_entropy
        self.dark = dark
        self._cache: dict[tuple[int, int, int], Style] = {}
        self.mark_style = Style(color="#ff5fd7", bold=True)
        self.escape_fg = "#ffd75f"

    def configure(self, show_entropy: bool, dark: bool) -> bool:
        changed = (show_entropy, dark) != (self.show_entropy, self.dark)
        self.show_entropy, self.dark = show_entropy, dark
        if changed:
            self._cache.clear()
        return changed

    def style(self, kind: int, bucket: int, parity: int) -> Style:
        key = (kind, bucket, parity)
        st = self._cache.get(key)
        if st is None:
            st = self._cache[key] = self._make(kind, bucket, parity)
        return st

    def _make(self, kind: int, bucket: int, parity: int) -> Style:
        if kind == KIND_MARK:
            return self.mark_style
        bg: Color | None = None
        if self.show_entropy and bucket >= 0:
            bg = BUCKET_COLORS[bucket]
            if parity == 1:
                bg = bg.darken(0.12)
        elif parity == 1:
            bg = Color.parse("#34344a" if self.dark else "#dcdcec")
        if bg is None:
            if kind == KIND_ESCAPE:
                return Style(color="#d7875f" if not self.dark else self.escape_fg, italic=True)
            return Style()
        fg = bg.get_contrast_text(1.0)
        if kind == KIND_ESCAPE:
            return Style(bgcolor=bg.rich_color, color=self.escape_fg if fg.brightness > 0.5 else "#5f0000",
                         italic=True)
        return Style(bgcolor=bg.rich_color, color=fg.rich_color)
