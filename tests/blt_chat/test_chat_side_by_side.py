"""Issue 17 in the chat: the settings panel's values apply to a regeneration with one key (F5 /
Ctrl+R in the panel), and two kept answers of one prompt are shown side by side (S in the
branches screen, or the palette)."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static

from blt_chat.app import BLTChatApp
from blt_chat.screens.branches import BranchesScreen
from blt_chat.screens.chat import ChatScreen
from blt_chat.screens.settings import SettingsScreen
from blt_chat.screens.side_by_side import SideBySideScreen, answer_summary, kept_answers
from blt_chat.settings import Settings

from .chat_helpers import answered_app, until

SIZE = (120, 34)
pytestmark = pytest.mark.anyio


def make_app(service, **kw) -> BLTChatApp:
    return BLTChatApp(service=service, settings=Settings(**{"max_new_bytes": 24, "seed": 5, **kw}),
                      save=False)


def shown(tr) -> list:
    """The answer records a transcript draws (newlines apart: they are line breaks, not glyphs)."""
    return [r for line in tr._vlines for g in line.glyphs for r in g.recs]


def drawn(turn) -> list:
    return [r for r in turn.records if r.byte != 10]


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


async def answer(pilot, text: str) -> None:
    app = pilot.app
    assert app.chat.send(text)
    await until(pilot, lambda: not app.chat.generating)
    await pilot.pause(0.05)


async def regenerate(pilot) -> None:
    await pilot.press("f5")
    await until(pilot, lambda: not pilot.app.chat.generating)
    await pilot.pause(0.05)


async def test_settings_values_apply_to_a_regeneration_with_one_key(tiny_service):
    app = make_app(tiny_service, temperature=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "Hello")
        first = app.chat.turns[-1]
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        field = app.screen.query_one("#set-temperature", Input)
        field.focus()
        field.value = "0.25"  # typed, not committed: F5 applies the focused field too
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen) and not app.chat.generating
                    and app.chat.turns[-1] is not first)
        await pilot.pause(0.05)
        again = app.chat.turns[-1]
        assert app.settings.temperature == 0.25
        assert again.meta["sampling"]["temperature"] == 0.25 and first.meta["sampling"]["temperature"] == 1.0
        assert kept_answers(again) == [first, again]  # the earlier answer is kept

        # an invalid focused value: not regenerated, the panel stays open with the error
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        field = app.screen.query_one("#set-temperature", Input)
        field.focus()
        field.value = "-3"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen) and "Not regenerated" in app.notices[-1]
        assert len(kept_answers(app.chat.turns[-1])) == 2 and app.settings.temperature == 0.25


async def test_kept_answers_side_by_side(tiny_service):
    app = make_app(tiny_service)
    async with app.run_test(size=SIZE) as pilot:
        await answer(pilot, "Hello")
        await pilot.press("ctrl+p")
        await pilot.pause()
        app.chat.action_side_by_side()  # one answer only: a warning, no screen
        await pilot.pause()
        assert "at least two kept answers" in app.notices[-1]
        await pilot.press("escape")
        await pilot.pause()
        app.settings.seed = 6
        await regenerate(pilot)
        app.settings.seed = 7
        await regenerate(pilot)
        answers = kept_answers(app.chat.turns[-1])
        assert len(answers) == 3
        await pilot.press("f10")
        await until(pilot, lambda: isinstance(app.screen, BranchesScreen))
        app.screen.options.highlighted = 1  # the answer
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SideBySideScreen))
        sbs = app.screen
        left, right = (sbs.query_one(f"#sbs-{side}") for side in ("left", "right"))
        shown_i = answers.index(app.chat.turns[-1])
        assert same(shown(left), drawn(answers[shown_i]))
        assert same(shown(right), drawn(answers[(shown_i + 1) % 3]))
        head = str(sbs.query_one("#sbs-left-head", Static).render())
        assert head == answer_summary(answers[shown_i], shown_i + 1, 3)
        assert f"answer {shown_i + 1}/3" in head and "seed 7" in head and "24 bytes" in head
        await pilot.press("right")
        assert same(shown(right), drawn(answers[(shown_i + 2) % 3]))
        await pilot.press("right")  # skips the one on the left
        assert same(shown(right), drawn(answers[(shown_i + 1) % 3]))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BranchesScreen)
        app.screen.options.highlighted = 0  # the prompt: its answers side by side
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SideBySideScreen))
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        app.chat.action_side_by_side()  # the palette's command: the last answer
        await pilot.pause()
        assert isinstance(app.screen, SideBySideScreen)
        assert app.errors == []


@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=["80x24", "160x45"])
def test_side_by_side_snapshot(snap_compare, tiny_service, size):
    app, answer_first = answered_app(tiny_service)

    async def run_before(pilot):
        await answer_first(pilot)
        app.settings.temperature = 0.5
        await regenerate(pilot)
        app.chat.action_side_by_side()
        await until(pilot, lambda: isinstance(app.screen, SideBySideScreen))
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
