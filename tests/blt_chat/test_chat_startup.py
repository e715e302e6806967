"""Screens opened while the model is still loading: the chat underneath keeps its real width."""

from __future__ import annotations

import time

import pytest

from blt_chat.app import BLTChatApp
from blt_chat.screens import HelpScreen
from blt_chat.settings import Settings

from .chat_helpers import until
from .test_chat_issue10 import save_tiny

pytestmark = pytest.mark.anyio


async def test_help_opened_while_loading_leaves_the_transcript_its_full_width(tmp_path, monkeypatch):
    """Found by hand: F1 pressed during the start-up load left the answer wrapped at 10 columns
    for the rest of the session (the transcript kept the width it measured behind the help)."""
    import blt_model

    real_load = blt_model.load_model

    def slow_load(*a, **kw):
        time.sleep(1.0)  # the help screen is up before the model arrives
        return real_load(*a, **kw)

    monkeypatch.setattr(blt_model, "load_model", slow_load)
    on_mount = BLTChatApp.on_mount

    def help_at_once(self) -> None:  # F1 read from the terminal before the first layout
        on_mount(self)
        self.chat.action_help()

    monkeypatch.setattr(BLTChatApp, "on_mount", help_at_once)
    app = BLTChatApp(str(save_tiny(tmp_path / "m")), settings=Settings(device="cpu", max_new_bytes=64))
    async with app.run_test(size=(100, 30)) as pilot:
        assert await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert await until(pilot, lambda: app.service is not None and not app.loading_model)
        await pilot.press("escape")
        await pilot.pause()
        transcript = app.chat.transcript
        await pilot.press(*"hello", "enter")
        assert await until(pilot, lambda: not app.chat.generating and app.chat.n_turns >= 2)
        await pilot.pause()
        width = transcript.scrollable_content_region.width
        assert width > 50
        assert transcript._wrap_width == width
