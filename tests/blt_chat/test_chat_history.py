"""Issue 13 in the app (a real tiny random-weight model): conversations persist and reopen with
the same colours, regenerated answers are kept and cycled, an edited prompt starts a branch and
the old one stays reachable, the conversations screen, unusable files and failed writes."""

from __future__ import annotations

import errno
import json

import pytest

from blt_chat import store
from blt_chat.app import BLTChatApp
from blt_chat.keys import palette_commands
from blt_chat.screens.branches import BranchesScreen
from blt_chat.screens.conversations import ConversationsScreen
from blt_chat.screens.dialogs import ConfirmScreen, TextPromptScreen
from blt_chat.settings import Settings
from blt_chat.widgets.transcript import ROLE_INFO

from .chat_helpers import until

SIZE = (100, 30)
pytestmark = pytest.mark.anyio


def make_app(service, **kw) -> BLTChatApp:
    return BLTChatApp(service=service, settings=Settings(**{"max_new_bytes": 24, **kw}))


async def answer(pilot, text: str) -> None:
    app = pilot.app
    assert app.chat.send(text)
    await until(pilot, lambda: not app.chat.generating)
    await pilot.pause(0.05)


def rendered(app: BLTChatApp) -> list:
    """Every turn's lines as drawn: (text, style) of each segment (info lines apart: the model
    line after a restart is new)."""
    tr = app.chat.transcript
    return [[(seg.text, seg.style) for seg in tr._build_strip(i)]
            for i, line in enumerate(tr._vlines) if line.role != ROLE_INFO]


def records(app: BLTChatApp) -> list:
    return [[(r.byte, r.entropy, r.patch_start, r.patch_index, r.prob) for r in t.records]
            for t in app.chat.turns]


async def test_generate_quit_restart_same_conversation_same_colours(tiny_service):
    app = make_app(tiny_service, seed=3)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "Hello there")
        await answer(pilot, "and ünïcödé?")
        before, recs = rendered(app), records(app)
        turns = [(t.role, bytes(t.data)) for t in app.chat.turns]
        await pilot.press("ctrl+q")
    (path,) = store.files(store.conversations_dir())
    doc = json.loads(path.read_text())
    assert doc["format"] == store.FORMAT and doc["version"] == store.VERSION
    meta = doc["turns"][1]["meta"]
    assert meta["model"]["weights"] == tiny_service.weights_hash and len(meta["model"]["weights"]) == 12
    assert meta["sampling"]["seed"] == 3 and meta["sampling"]["max_new_bytes"] == 24
    assert meta["patching"]["used"]["scheme"] == tiny_service.patch_config(Settings()).scheme
    assert meta["complete"] is True

    again = make_app(tiny_service)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert [(t.role, bytes(t.data)) for t in again.chat.turns] == turns
        assert records(again) == recs  # each byte's entropy, patch start, patch and probability
        after = rendered(again)
        assert sum(len(line) for line in after) > 10
        assert after == before  # every byte drawn with the same style
        assert again.errors == []


async def test_regenerate_twice_keeps_three_answers_and_cycles(tiny_service):
    app = make_app(tiny_service)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "Q")
        for _ in range(2):
            await pilot.press("f5")
            await until(pilot, lambda: not app.chat.generating)
        await pilot.pause(0.05)
        user = app.chat.turns[0]
        kept = list(user.children)
        assert len(kept) == 3 and app.chat.turns[-1] is kept[2]
        assert "blt › 3/3 · Ctrl+N next" in app.chat.transcript.plain_text()
        shown = []
        for _ in range(3):
            await pilot.press("ctrl+n")
            shown.append(app.chat.turns[-1])
        assert shown == [kept[0], kept[1], kept[2]]
        await pilot.press("ctrl+n")
        assert "blt › 1/3" in app.chat.transcript.plain_text()
        assert app.chat.transcript.plain_text().count("blt ›") == 1  # one answer shown at a time
    again = make_app(tiny_service)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        user = again.chat.turns[0]
        assert [bytes(a.data) for a in user.children] == [bytes(a.data) for a in kept]
        assert again.chat.turns[-1] is user.children[0]  # the one shown when the app quit


async def test_editing_an_earlier_prompt_starts_a_branch_the_old_one_stays(tiny_service):
    app = make_app(tiny_service)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "first")
        await answer(pilot, "second")
        old = list(app.chat.turns)
        await pilot.press("f10")
        await until(pilot, lambda: isinstance(app.screen, BranchesScreen))
        await pilot.press("up", "up", "up", "enter")  # the first prompt
        await until(pilot, lambda: app.chat.editing is old[0])
        assert app.chat.prompt_box.text == "first" and "Editing" in app.chat.prompt_box.border_title
        await pilot.press(*"!", "enter")
        await until(pilot, lambda: not app.chat.generating)
        assert [t.text for t in app.chat.turns][0] == "first!" and len(app.chat.turns) == 2
        assert app.chat.editing is None and "you › 2/2" in app.chat.transcript.plain_text()
        # the old branch: F10, the first prompt, Left
        await pilot.press("f10")
        await until(pilot, lambda: isinstance(app.screen, BranchesScreen))
        await pilot.press("home", "left", "escape")
        await until(pilot, lambda: not isinstance(app.screen, BranchesScreen))
        assert app.chat.turns == old
        assert "second" in app.chat.transcript.plain_text()
        # Esc leaves an edit without sending anything
        app.chat.start_edit(old[2])
        await pilot.press("escape")
        assert app.chat.editing is None and app.chat.prompt_box.text == ""
    again = make_app(tiny_service)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert [t.text for t in again.chat.turns] == [t.text for t in old]
        assert len(again.chat.conversation.root.children) == 2


async def test_conversations_screen_open_rename_delete_new_and_palette(tiny_service):
    titles = {t: a for t, _h, a in palette_commands()}
    for action in ("conversations", "clear", "rename_conversation", "delete_conversation",
                   "next_answer", "branches"):
        assert action in titles.values(), action
    app = make_app(tiny_service)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "alpha")
        await pilot.press("ctrl+l")  # a new conversation; "alpha" stays saved
        assert app.chat.turns == []
        await answer(pilot, "beta")
        await pilot.press("ctrl+p", *"Conversations")
        await pilot.pause(0.4)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        screen = app.screen
        assert [s.title for s in screen.summaries] == ["beta", "alpha"]
        await pilot.press("down", "r")
        await until(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await pilot.press("ctrl+u", *"Renamed [/] one", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConversationsScreen)
                    and [s.title for s in app.screen.summaries] == ["Renamed [/] one", "beta"])
        await pilot.press("enter")  # open it
        await until(pilot, lambda: app.chat.turns and app.chat.turns[0].text == "alpha")
        assert app.chat.conversation.display_title == "Renamed [/] one"
        await pilot.press("f9", "d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")  # focus is on "No": nothing is deleted
        await until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        assert len(store.files(store.conversations_dir())) == 2
        await pilot.press("d", "y")  # the highlighted one, the open one: deleted, a new one shown
        await until(pilot, lambda: len(store.files(store.conversations_dir())) == 1)
        assert app.chat.turns == [] and [s.title for s in app.screen.summaries] == ["beta"]
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConversationsScreen))
        assert app.chat.turns == [] and app.errors == []


async def test_unusable_files_are_set_aside_with_a_toast_and_the_app_starts(tiny_service):
    folder = store.conversations_dir()
    folder.mkdir(parents=True)
    app = make_app(tiny_service)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "good one")
    (good,) = store.files(folder)
    text = good.read_text()
    (folder / "corrupt.json").write_text("{not json at all")
    (folder / "truncated.json").write_text(text[: len(text) // 2])
    (folder / "future.json").write_text(text.replace(f'"version":{store.VERSION}', '"version":7', 1))
    again = make_app(tiny_service)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.chat.turns and again.chat.turns[0].text == "good one"  # the readable one opens
        for name, kind in (("corrupt", "corrupt"), ("truncated", "truncated"), ("future", "newer-version")):
            (aside,) = folder.glob(f"{name}.json.{kind}-*")
            assert any(str(aside) in n and str(folder / f"{name}.json") in n for n in again.notices), name
        assert sorted(p.name for p in store.files(folder)) == [good.name]
        await answer(pilot, "still works")


async def test_full_disk_is_one_toast_and_the_conversation_stays(tiny_service, monkeypatch):
    import blt_chat.files

    real = blt_chat.files.atomic_write_text
    failures = []

    def full(path, text):
        if path.parent == store.conversations_dir():
            failures.append(path)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(blt_chat.files, "atomic_write_text", full)
    app = make_app(tiny_service, max_new_bytes=64)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "one")
        await answer(pilot, "two")
        assert len(failures) >= 2
        toasts = [e for e in app.errors if "No space left" in e]
        assert len(toasts) == 1 and str(store.conversations_dir()) in toasts[0]
        assert [t.text for t in app.chat.turns][::2] == ["one", "two"]
        monkeypatch.setattr(blt_chat.files, "atomic_write_text", real)
        await answer(pilot, "three")
        assert any("saved again" in n for n in app.notices)
        assert len(store.read_conversation(store.path_for(app.chat.conversation)).turns) == 6


async def test_streaming_saves_at_most_once_a_second(endless_service, monkeypatch):
    import time

    import blt_chat.files

    real = blt_chat.files.atomic_write_text
    saves: list[tuple[float, int]] = []

    def timed(path, text):
        real(path, text)
        if path.parent == store.conversations_dir():
            saves.append((time.monotonic(), len(store.read_conversation(path).turns[-1].data)))

    monkeypatch.setattr(blt_chat.files, "atomic_write_text", timed)
    app = make_app(endless_service, max_new_bytes=100_000)
    async with app.run_test(size=SIZE) as pilot:
        app.chat.send("stream")
        await pilot.pause(2.6)
        await pilot.press("escape")
        await until(pilot, lambda: not app.chat.generating)
        await pilot.pause(0.05)
    streamed = [(t, n) for t, n in saves if n < len(app.chat.turns[-1].data)]
    assert len(streamed) >= 2  # the answer was on disk while it streamed, and grew there
    assert streamed[-1][1] > streamed[0][1]
    gaps = [b[0] - a[0] for a, b in zip(streamed, streamed[1:], strict=False)]
    assert min(gaps) >= 0.9, gaps
    assert saves[-1][1] == len(app.chat.turns[-1].data)  # the stopped answer, whole
