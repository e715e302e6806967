"""The footer and Textual's keys panel are rebuilt only when the keys they show change (each
rebuild on every focus change was most of the app's time under fast typing), and they still
show the screen's keys after every change. The error line under a field is redrawn only when
its message changes. Collections: the app raises the young-generation threshold while it runs
and restores the process's own thresholds on exit."""

from __future__ import annotations

import gc

import pytest
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from blt_chat.app import GC_YOUNG_THRESHOLD, BLTChatApp
from blt_chat.screens import InspectorScreen
from blt_chat.settings import Settings
from blt_chat.widgets.error_line import ErrorLine
from blt_chat.widgets.key_views import KeyFooter, QuietKeyPanel, shown_keys

pytestmark = pytest.mark.anyio


def footer_labels(screen) -> set[str]:
    return {fk.description for fk in screen.query(FooterKey)}


def expected_labels(screen) -> set[str]:
    return {label for _, _, _, label, _, _, _, _ in shown_keys(screen)}


def counting(monkeypatch, cls) -> list[tuple]:
    """Record the screen's shown keys at each real rebuild of a `cls` view."""
    calls: list[tuple] = []
    original = cls.__mro__[1].recompose

    async def recompose(self):
        calls.append(shown_keys(self.screen, only_shown=False))
        await original(self)

    monkeypatch.setattr(cls.__mro__[1], "recompose", recompose)
    return calls


async def open_inspector(pilot) -> InspectorScreen:
    await pilot.press("f4")
    for _ in range(50):
        if isinstance(pilot.app.screen, InspectorScreen):
            break
        await pilot.pause(0.05)
    await pilot.pause()
    return pilot.app.screen


async def test_footer_rebuilds_only_when_keys_change_and_always_shows_them(tiny_service, monkeypatch):
    rebuilds = counting(monkeypatch, KeyFooter)
    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=16, seed=1))
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_inspector(pilot)
        inputs = [w for w in screen.query(Input) if w.focusable]
        assert len(inputs) >= 4
        inputs[0].focus()  # from the screen's first field (not an Input) to the inputs' keys
        await pilot.pause()
        start = len(rebuilds)
        for _ in range(3):
            for field in inputs:
                field.focus()
                await pilot.pause()
                assert footer_labels(screen) == expected_labels(screen)
        # the same keys are on show in every input: focusing 3 x N of them rebuilt nothing
        assert len(rebuilds) == start
        await pilot.press("escape")
        await pilot.pause()
        assert footer_labels(app.screen) == expected_labels(app.screen)


async def test_keys_panel_rebuilds_only_when_keys_change(tiny_service, monkeypatch):
    rebuilds = counting(monkeypatch, QuietKeyPanel)
    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=16, seed=1))
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_inspector(pilot)
        app.action_show_help_panel()  # the palette's "Keys"
        await pilot.pause()
        panel = screen.query_one(QuietKeyPanel)
        inputs = [w for w in screen.query(Input) if w.focusable]
        inputs[0].focus()
        await pilot.pause()
        start = len(rebuilds)
        for field in inputs * 2:
            field.focus()
            await pilot.pause()
        assert len(rebuilds) == start
        # a change of keys (the table's own keys differ from an input's) does rebuild it
        screen.query_one("#insp-table").focus()
        await pilot.pause(0.1)
        assert len(rebuilds) == start + 1
        assert panel._shown == shown_keys(screen, only_shown=False)


async def test_error_line_redrawn_only_when_its_message_changes(tiny_service, monkeypatch):
    updates: list[str] = []
    original = ErrorLine.update
    monkeypatch.setattr(ErrorLine, "update", lambda self, c="", **kw: (updates.append(str(c)),
                                                                       original(self, c, **kw)))
    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=16, seed=1))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        settings = app.screen
        for text in ("✗ bad", "✗ bad", "✗ bad", "", "", "✗ other"):
            settings.show_error("temperature", text)
        assert updates == ["✗ bad", "", "✗ other"]
        assert settings.field_error("temperature") == "✗ other"
        line = settings.query_one("#err-temperature", ErrorLine)
        assert line.has_class("-shown")
        settings.show_error("temperature", "")
        assert not line.has_class("-shown") and settings.field_error("temperature") == ""


async def test_collector_threshold_raised_while_running_and_restored(tiny_service):
    before = gc.get_threshold()
    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=16, seed=1))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before
