"""The conversation, without any UI: turns, prompt templates, the stop-string holdback and the
prompt history. Plain Python (no Textual, no torch), so it is tested directly."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

CHAT_STOP = b"\nUser:"
HISTORY_BYTES = 1500  # chat template: how much earlier conversation goes into the prompt
TEMPLATES = ("chat", "raw")


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    data: bytearray = field(default_factory=bytearray)
    records: list = field(default_factory=list)  # ByteEvents of an answer
    note: str = ""

    @property
    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="replace")


def prompt_bytes_seen(n_prompt: int, max_positions: int) -> int:
    """How many prompt bytes the model sees: blt_model.inference.generation keeps BOS plus the last
    max_positions // 2 bytes of a prompt longer than its context (BOS + bytes > max_positions)."""
    if n_prompt + 1 > max_positions:
        return min(n_prompt, max_positions // 2)
    return n_prompt


class Conversation:
    """Turns of one chat and how they become the bytes the model continues."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    def __len__(self) -> int:
        return len(self.turns)

    def __iter__(self) -> Iterator[Turn]:
        return iter(self.turns)

    def clear(self) -> None:
        self.turns.clear()

    def add_user(self, text: str) -> Turn:
        turn = Turn("user", bytearray(text.encode("utf-8")))
        self.turns.append(turn)
        return turn

    def begin_answer(self) -> Turn:
        turn = Turn("assistant")
        self.turns.append(turn)
        return turn

    def drop_answers(self) -> bool:
        """Remove trailing answers (for regenerate). True when a user turn is left to answer."""
        while self.turns and self.turns[-1].role == "assistant":
            self.turns.pop()
        return bool(self.turns)

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
