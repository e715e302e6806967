"""Two kept answers of one prompt side by side (S in the branches screen, or the palette): each
drawn as in the chat (entropy colours, patch marks) under a header saying how it was made
(sampling, patching, model) and what came of it (bytes, patches, mean patch size, mean entropy).
Left/Right choose the answer on the right; Esc goes back."""

from __future__ import annotations

import math
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ..conversation import Conversation, Turn
from ..keys import SIDE_BY_SIDE_KEYS, bindings, key_hint
from ..widgets.transcript import Transcript
from .closing import close


def kept_answers(turn: Turn) -> list[Turn]:
    """The answers kept for the prompt `turn` answers (itself included), in their order."""
    parent = turn.parent
    return [t for t in parent.children if t.role == "assistant"] if parent is not None else [turn]


def answer_summary(turn: Turn, position: int, count: int) -> str:
    """Two short lines: how the answer was made, and what came of it."""
    meta: dict[str, Any] = turn.meta or {}
    s = meta.get("sampling") or {}
    used = (meta.get("patching") or {}).get("used") or {}
    model = (meta.get("model") or {}).get("label") or "?"
    seed = s.get("seed", "?")
    made = [f"answer {position}/{count}", f"T {s.get('temperature', '?')}",
            f"top-k {s.get('top_k', '?')}", f"top-p {s.get('top_p', '?')}",
            f"seed {'random' if seed is None else seed}", f"{used.get('scheme', '?')} patching", model]
    if used.get("scheme") == "entropy" and used.get("entropy_threshold") is not None:
        made.insert(-1, f"θ {used['entropy_threshold']:.3g}")
    recs = turn.records
    ents = [r.entropy for r in recs if math.isfinite(r.entropy)]
    patches = sum(1 for r in recs if r.patch_start)  # counted as the chat's note counts them
    came = [f"{len(recs)} bytes", f"{patches} patches",
            f"{len(recs) / patches:.2f} B/patch" if patches else "no patches",
            f"mean H {sum(ents) / len(ents):.2f} nats" if ents else "no entropies"]
    return " · ".join(made) + "\n" + " · ".join(came)


class SideBySideScreen(ModalScreen[None]):
    CSS_PATH = "side_by_side.tcss"
    BINDINGS = bindings(SIDE_BY_SIDE_KEYS)

    def __init__(self, conversation: Conversation, turn: Turn, *, show_entropy: bool = True,
                 show_marks: bool = True, dark: bool = True) -> None:
        super().__init__()
        self.conversation = conversation
        self.answers = kept_answers(turn)
        self.left = self.answers.index(turn)
        self.right = (self.left + 1) % len(self.answers)
        self.options = dict(show_entropy=show_entropy, show_marks=show_marks, dark=dark)

    def compose(self) -> ComposeResult:
        with Vertical(id="sbs-box"):
            yield Static(f"Kept answers side by side · {key_hint(SIDE_BY_SIDE_KEYS)}", id="sbs-title")
            with Horizontal(id="sbs-columns"):
                for side in ("left", "right"):
                    with Vertical(classes="sbs-column"):
                        yield Static("", id=f"sbs-{side}-head", classes="sbs-head")
                        yield Transcript(id=f"sbs-{side}")

    def on_mount(self) -> None:
        for side in ("left", "right"):
            self.query_one(f"#sbs-{side}", Transcript).set_options(**self.options)
        self.show("left")
        self.show("right")

    def show(self, side: str) -> None:
        i = self.left if side == "left" else self.right
        turn = self.answers[i]
        self.query_one(f"#sbs-{side}-head", Static).update(answer_summary(turn, i + 1, len(self.answers)))
        tr = self.query_one(f"#sbs-{side}", Transcript)
        tr.clear()
        tr.add_answer(turn.records, header=None)

    def action_other(self, step: int) -> None:
        """The next (or previous) kept answer on the right, never the one on the left."""
        n = len(self.answers)
        if n < 2:
            return
        nxt = (self.right + step) % n
        if nxt == self.left:
            nxt = (nxt + step) % n
        self.right = nxt
        self.show("right")

    def action_close(self) -> None:
        close(self)
