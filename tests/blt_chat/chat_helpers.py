"""Test-only helpers: recorded byte events and a fake clock (the app itself never uses them)."""

from __future__ import annotations

import math
import unicodedata

from textual import events
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

from blt_chat.app import BLTChatApp
from blt_chat.messages import GenerationEvent
from blt_chat.render import ByteRecord


class FakeClock:
    def __init__(self, step: float = 0.01) -> None:
        self.t = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def word_entropies(data: bytes) -> list[float]:
    """For byte i, the entropy that decided whether it starts a patch: high after a space or
    punctuation, decaying inside a word (roughly what a trained entropy model shows)."""
    out = []
    k = 0
    for i in range(len(data)):
        prev = data[i - 1] if i else 32
        k = k + 1 if (chr(prev).isalnum() or prev >= 0x80) else 0
        out.append(2.9 * 0.35 ** k + 0.2 + 0.2 * (1 + math.sin(i * 1.7)) / 2)
    return out


def recorded_events(data: bytes, threshold: float = 1.5) -> list[ByteRecord]:
    """Deterministic 'recorded' events shaped like a trained model's: entropy is high after a
    space or punctuation and decays inside a word; patches start where it exceeds the threshold
    (the entropy scheme's rule), as a generation would report them."""
    out = []
    patch = 1
    for i, (b, h) in enumerate(zip(data, word_entropies(data), strict=True)):
        start = i == 0 or h > threshold
        if start and i:
            patch += 1
        out.append(ByteRecord(byte=b, entropy=h, patch_start=start, patch_index=patch, prob=0.5))
    return out


SAMPLE_ANSWER = (
    "Bytes, not tokens: the model reads raw UTF-8 — ünïcödé, 漢字 and 🦊 — and cuts it into patches "
    "where the next byte is hard to guess.\nControl bytes stay visible: \x1b[31m and \x07, invalid: "
).encode() + b"\xff\xfe" + b" done."


def begin_fake_answer(app: BLTChatApp, user_text: str) -> int:
    """Put the chat in the state of answering `user_text` without starting a model worker."""
    chat = app.chat
    chat.transcript.clear()
    chat.conversation.add_user(user_text)
    chat.transcript.add_user(user_text)
    chat.gen_id += 1
    chat.current = chat.conversation.begin_answer()
    chat.n_turns = len(chat.turns)
    chat.counters.reset(chat.clock())
    chat._state = "generating"
    chat.generating = True
    chat.transcript.begin_answer("blt ›")
    return chat.gen_id


def post_events(app: BLTChatApp, gen_id: int, events) -> None:
    for ev in events:
        app.chat.post_message(GenerationEvent(gen_id, ev))


async def until(pilot, condition, timeout: float = 20.0) -> bool:
    """Let the app run until `condition()` holds (a loaded CI machine can be slow), then assert
    it (-> True, so `assert await until(...)` reads as well). The one polling helper of the tests."""
    import time

    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await pilot.pause(0.05)
    assert condition()
    return True


def answered_app(service, prompt: str = "Tell me about bytes.") -> tuple[BLTChatApp, object]:
    """For snapshots of views over real answers: an app with a fixed seed and a fake clock (a
    steady rate line), and a `run_before` start that answers `prompt` with the tiny model."""
    from blt_chat.settings import Settings

    app = BLTChatApp(service=service, settings=Settings(max_new_bytes=60, seed=5), clock=FakeClock(0.004),
                     save=False)

    async def answer_first(pilot) -> None:
        await pilot.pause()
        app.chat.prompt_box.cursor_blink = False
        assert app.chat.send(prompt)
        await until(pilot, lambda: not app.chat.generating)
        await pilot.pause(0.05)

    return app, answer_first


NAMED = {"backspace", "delete", "enter", "escape", "tab", "up", "down", "left", "right", "home", "end",
         "pageup", "pagedown", "space"} | {f"f{i}" for i in range(1, 9)}


def send_burst(app: BLTChatApp, keys: list[str]) -> None:
    """Queue all `keys` at once, as fast typing or a paste does. (Pilot.press waits for the app
    to go idle after every key: gentler, and slow while an answer streams.) Multi-character
    entries are typed character by character."""
    for token in keys:
        for key in ([token] if len(token) == 1 or token in REPLACED_KEYS or "+" in token
                    or token in NAMED else list(token)):
            if len(key) == 1 and not key.isalnum():
                key = _character_to_key(key)
            try:
                char = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
            except KeyError:
                char = key if len(key) == 1 else None
            event = events.Key(key, char)
            event.set_sender(app)
            app._driver.send_message(event)


def gate_calls(monkeypatch, owner, name: str, free_calls: int):
    """Replace `owner.name` so that after `free_calls` calls each call waits (up to 30 s) for the
    returned threading.Event: a long pass held mid-way, without sleeps."""
    import threading

    original, calls, gate = getattr(owner, name), [], threading.Event()

    def gated(*args, **kw):
        calls.append(1)
        if len(calls) > free_calls:
            gate.wait(30)
        return original(*args, **kw)

    monkeypatch.setattr(owner, name, gated)
    return gate


async def release_gate(pilot, gate, service) -> None:
    """Open a `gate_calls` gate; the stopped worker lets go of the model and every worker ends."""
    gate.set()
    assert service.lock.acquire(timeout=10)  # the worker let go of the model
    service.lock.release()
    await pilot.app.workers.wait_for_complete()


async def open_inspector_on(pilot, service, text: str):
    """The inspector pushed on `text`, once its first patching is shown."""
    from blt_chat.screens.inspector import InspectorScreen

    screen = InspectorScreen(service, text=text)
    await pilot.app.push_screen(screen)
    await until(pilot, lambda: screen.patching is not None)
    return screen
