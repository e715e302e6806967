"""SVG snapshots (pytest-textual-snapshot). Deterministic: recorded events, a fake clock, no
cursor blink. Update with: pytest tests/blt_chat/test_chat_snapshots.py --snapshot-update"""

from __future__ import annotations

import pytest
import torch

from blt_chat.app import BLTChatApp
from blt_chat.screens.inspector import InspectorScreen
from blt_chat.screens.settings import SettingsScreen
from blt_chat.service import Analysis
from blt_chat.settings import Settings
from blt_model.ids import encode

from .chat_helpers import (
    SAMPLE_ANSWER,
    FakeClock,
    begin_fake_answer,
    post_events,
    recorded_events,
    until,
    word_entropies,
)

# 80x24 (the smallest supported terminal), the old default and a large one
SIZES = [(80, 24), (120, 36), (160, 45)]
size_param = pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])


def make_app(service) -> BLTChatApp:
    return BLTChatApp(service=service, settings=Settings(), clock=FakeClock(0.004), save=False)


async def _quiet(pilot) -> None:
    app = pilot.app
    app.chat.prompt_box.cursor_blink = False
    app.clear_notifications()
    await pilot.pause()


@size_param
def test_chat_mid_answer(snap_compare, tiny_service, size):
    async def run_before(pilot):
        app = pilot.app
        await _quiet(pilot)
        gen_id = begin_fake_answer(app, "Tell me about bytes.")
        # mid-answer: only part of the recorded answer has arrived, generation still running
        post_events(app, gen_id, recorded_events(SAMPLE_ANSWER)[:150])
        await pilot.pause(0.2)
        app.chat.transcript.flush()
        app.chat._publish()
        app.chat.prompt_box.insert("and in Fren")
        await pilot.pause()

    assert snap_compare(make_app(tiny_service), terminal_size=size, run_before=run_before)


@size_param
def test_settings_panel(snap_compare, tiny_service, size):
    async def run_before(pilot):
        await _quiet(pilot)
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))
        pilot.app.screen.query_one("#set-temperature").value = "hot"
        await pilot.pause()

    assert snap_compare(make_app(tiny_service), terminal_size=size, run_before=run_before)


def recorded_analysis(text: str) -> Analysis:
    data = text.encode()
    ids = torch.tensor([encode(data)])
    h = word_entropies(data) + [2.0]  # entropies[t] predicts position t + 1
    return Analysis(data=data, ids=ids, entropies=torch.tensor([h], dtype=torch.float32))


@size_param
def test_inspector(snap_compare, tiny_service, size):
    async def run_before(pilot):
        await _quiet(pilot)
        a = recorded_analysis("Byte Latent Transformer: patches scale better than tokens. 2024-12-13!")
        screen = InspectorScreen(pilot.app.service, analysis=a, scheme="entropy",
                                 values={"threshold": 1.5, "min_patch_size": 1, "max_patch_size": 8})
        await pilot.app.push_screen(screen)
        await pilot.pause()
        screen.query_one("#insp-input").cursor_blink = False
        await pilot.pause()

    assert snap_compare(make_app(tiny_service), terminal_size=size, run_before=run_before)
