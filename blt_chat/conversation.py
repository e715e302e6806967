"""The conversation, without any UI: a tree of turns (regenerated answers and edited prompts are
kept as alternatives, the current branch is the path through the chosen ones), prompt templates,
the stop-string holdback and the prompt history. Plain Python (no Textual, no torch), so it is
tested directly; store.py reads and writes it."""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

CHAT_STOP = b"\nUser:"
HISTORY_BYTES = 1500  # chat template: how much earlier conversation goes into the prompt
TEMPLATES = ("chat", "raw")
TITLE_CHARS = 60


@dataclass(eq=False)  # compared by identity: turns are nodes of a tree
class Turn:
    role: str  # "user" | "assistant" ("root" for the tree's invisible top)
    data: bytearray = field(default_factory=bytearray)
    records: list = field(default_factory=list)  # per byte of an answer: ByteEvents or StoredBytes
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # an answer's model, settings, time, state
    parent: Turn | None = field(default=None, repr=False)
    children: list[Turn] = field(default_factory=list, repr=False)  # alternatives that follow
    active: int = 0  # the child the current branch goes on with
    saved_json: str | None = field(default=None, repr=False)  # store.py's, once the turn is final

    @property
    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="replace")


def half(x: float) -> float:
    """`x` rounded to float16, the precision alternatives are kept in (live and on disk alike, so a
    reopened answer shows the same numbers)."""
    try:
        return struct.unpack("<e", struct.pack("<e", x))[0]
    except (OverflowError, struct.error):
        return float("nan")


@dataclass(slots=True)
class StoredTop:
    """One answer byte's alternatives: the BLT's and the entropy model's top candidates (model
    ids, most likely first) with float16 probabilities, the BLT's entropy (nats) at the byte and
    its probability of the byte itself. blt_model's TopCandidates, as kept."""

    blt_ids: tuple[int, ...]
    blt_probs: tuple[float, ...]
    entropy_ids: tuple[int, ...]
    entropy_probs: tuple[float, ...]
    blt_entropy: float
    actual_prob: float

    @classmethod
    def of(cls, top: Any) -> StoredTop:
        """From anything with TopCandidates' fields, probabilities rounded to float16."""
        return cls(tuple(int(i) for i in top.blt_ids), tuple(half(p) for p in top.blt_probs),
                   tuple(int(i) for i in top.entropy_ids), tuple(half(p) for p in top.entropy_probs),
                   half(top.blt_entropy), half(top.actual_prob))


@dataclass(slots=True)
class StoredByte:
    """One answer byte as saved (blt_model's ByteEvent has these fields too)."""

    byte: int
    entropy: float = float("nan")
    patch_start: bool = False
    patch_index: int = 0
    prob: float = float("nan")
    top: StoredTop | None = None


def new_conversation_id() -> str:
    """Sortable by creation time, unique without a registry."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


class Conversation:
    """A tree of turns and its current branch (`turns`, the path through each node's active
    child), and how that branch becomes the bytes the model continues."""

    def __init__(self, id: str | None = None, title: str = "", created: float | None = None) -> None:
        self.id = id or new_conversation_id()
        self.title = title  # "" = the first prompt is the title
        self.created = created if created is not None else time.time()
        self.updated = self.created
        self.revision = 0  # moves on every change: the saver writes when it has moved
        self.root = Turn("root")
        self.turns: list[Turn] = []

    def __len__(self) -> int:
        return len(self.turns)

    def __iter__(self) -> Iterator[Turn]:
        return iter(self.turns)

    def touch(self) -> None:
        self.revision += 1
        self.updated = time.time()

    def clear(self) -> None:
        self.root = Turn("root")
        self.turns = []
        self.touch()

    @property
    def display_title(self) -> str:
        """The title given, else the first line of the first prompt ever sent (an edited
        first prompt does not rename the conversation)."""
        if self.title:
            return self.title
        if not self.root.children:
            return "(new conversation)"
        text = self.root.children[0].text.strip()
        first = text.splitlines()[0] if text else ""
        return first[:TITLE_CHARS] + ("…" if len(first) > TITLE_CHARS else "") or "(empty prompt)"

    # ---------------------------------------------------------- growing the current branch
    def _append(self, turn: Turn) -> Turn:
        parent = self.turns[-1] if self.turns else self.root
        turn.parent = parent
        parent.children.append(turn)
        parent.active = len(parent.children) - 1
        self.turns.append(turn)
        self.touch()
        return turn

    def add_user(self, text: str) -> Turn:
        return self._append(Turn("user", bytearray(text.encode("utf-8"))))

    def begin_answer(self) -> Turn:
        return self._append(Turn("assistant"))

    def drop_answers(self) -> bool:
        """Step back to the last prompt (for regenerate): the answers stay in the tree, and the
        next begin_answer() adds one beside them. True when a user turn is left to answer."""
        while self.turns and self.turns[-1].role == "assistant":
            self.turns.pop()
        return bool(self.turns)

    # ---------------------------------------------------------- alternatives and branches
    def follow(self) -> None:
        """Recompute the current branch from the active children."""
        path, node = [], self.root
        while node.children:
            node.active = min(max(node.active, 0), len(node.children) - 1)
            node = node.children[node.active]
            path.append(node)
        self.turns = path

    @staticmethod
    def alternatives(turn: Turn) -> tuple[int, int]:
        """(position, count) of `turn` among the alternatives at its place, 1-based."""
        siblings = turn.parent.children if turn.parent is not None else [turn]
        pos = next((i for i, t in enumerate(siblings) if t is turn), 0)
        return pos + 1, len(siblings)

    def cycle(self, turn: Turn, step: int = 1) -> Turn:
        """Show the next (or previous) alternative of `turn`; the branch below it follows."""
        parent = turn.parent
        if parent is None or len(parent.children) < 2:
            return turn
        pos, n = self.alternatives(turn)
        parent.active = (pos - 1 + step) % n
        self.follow()
        self.touch()
        return parent.children[parent.active]

    def edit(self, turn: Turn, text: str) -> Turn:
        """A new prompt in place of the user turn `turn`: a new branch starts there, and the old
        one (with everything that followed it) stays reachable with cycle()."""
        at = next(i for i, t in enumerate(self.turns) if t is turn)
        del self.turns[at:]
        return self.add_user(text)

    def last_answer_turn(self) -> Turn | None:
        for t in reversed(self.turns):
            if t.role == "assistant":
                return t
        return None

    def walk(self) -> Iterator[Turn]:
        """Every turn of the tree, parents before children."""
        stack = list(reversed(self.root.children))
        while stack:
            t = stack.pop()
            yield t
            stack.extend(reversed(t.children))

    def user_prompts(self) -> list[str]:
        """Earlier prompts, oldest first (the prompt box's Up/Down history)."""
        return [t.text for t in self.turns if t.role == "user"]

    def last_answer(self) -> bytes:
        for t in reversed(self.turns):
            if t.role == "assistant" and t.data:
                return bytes(t.data)
        return b""

    def build_prompt(self, template: str) -> bytes:
        """The bytes the model continues: the last prompt ("raw"), or the conversation as
        User:/Assistant: lines ending with "Assistant:" ("chat")."""
        users = [t for t in self.turns if t.role == "user"]
        last = bytes(users[-1].data) if users else b""
        if template == "raw":
            return last
        earlier = self.turns[:-1] if self.turns and self.turns[-1].role == "user" else self.turns
        history = b""
        for t in earlier:
            if t.role == "user":
                history += b"User: " + bytes(t.data) + b"\n"
            else:
                history += b"Assistant: " + bytes(t.data).strip() + b"\n"
        return history[-HISTORY_BYTES:] + b"User: " + last + b"\nAssistant:"


class StopHoldback:
    """Holds back bytes that might begin the stop string, so "\\nUser:" never reaches the screen.

    `push(event)` returns the events that are safe to show; `done` turns True when the stop
    string is complete (its bytes are dropped); `release()` returns what is still held when
    generation ends for another reason."""

    def __init__(self, stop: bytes) -> None:
        self.stop = stop
        self.held: list[Any] = []
        self.done = False

    def push(self, event: Any) -> list[Any]:
        if not self.stop:
            return [event]
        self.held.append(event)
        pending = bytes(e.byte for e in self.held)
        if pending == self.stop:
            self.held.clear()
            self.done = True
            return []
        out = []
        while self.held and not self.stop.startswith(pending):
            out.append(self.held.pop(0))
            pending = pending[1:]
        return out

    def release(self) -> list[Any]:
        out, self.held = self.held, []
        return out


def stop_string(template: str) -> bytes:
    return CHAT_STOP if template == "chat" else b""


class PromptHistory:
    """Up/Down recall of earlier prompts. Browsing starts only from an empty box and goes on
    while the box still shows the recalled prompt unchanged."""

    def __init__(self) -> None:
        self.index: int | None = None  # position in the list being shown, None = not browsing

    def reset(self) -> None:
        self.index = None

    def step(self, prompts: Iterable[str], current: str, direction: int) -> str | None:
        """The text to show after Up (-1) or Down (+1), or None to let the key do its usual job."""
        items = list(prompts)
        browsing = self.index is not None and 0 <= self.index < len(items) and items[self.index] == current
        if not browsing:
            self.index = None
            if current or direction > 0 or not items:
                return None
            self.index = len(items) - 1
            return items[self.index]
        assert self.index is not None
        new = self.index + direction
        if new < 0:
            return current  # already at the oldest: stay
        if new >= len(items):
            self.index = None
            return ""
        self.index = new
        return items[new]
