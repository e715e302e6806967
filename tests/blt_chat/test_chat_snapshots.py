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


async def _quiet_inspector(pilot, screen) -> None:
    """No focused widget, so no text cursor: whether the text box's cursor showed depended on
    when its focus arrived under load."""
    screen.query_one("#insp-input").cursor_blink = False
    await pilot.pause()
    screen.set_focus(None)
    await pilot.pause()


def recorded_analysis(text: str) -> Analysis:
    data = text.encode()
    ids = torch.tensor([encode(data)])
    h = word_entropies(data) + [2.0]  # entropies[t] predicts position t + 1
    return Analysis(data=data, ids=ids, entropies=torch.tensor([h], dtype=torch.float32))


SAMPLE = "Byte Latent Transformer: patches scale better than tokens. 2024-12-13!"


async def _open_recorded_inspector(pilot, text: str) -> tuple[Analysis, InspectorScreen]:
    """The inspector on recorded entropies of `text` (no model call), focus and cursor quiet."""
    await _quiet(pilot)
    a = recorded_analysis(text)
    screen = InspectorScreen(pilot.app.service, analysis=a, scheme="entropy",
                             values={"threshold": 1.5, "min_patch_size": 1, "max_patch_size": 8})
    await pilot.app.push_screen(screen)
    await _quiet_inspector(pilot, screen)
    return a, screen


@size_param
def test_inspector(snap_compare, tiny_service, size):
    async def run_before(pilot):
        await _open_recorded_inspector(pilot, SAMPLE)

    assert snap_compare(make_app(tiny_service), terminal_size=size, run_before=run_before)


COMPARE_SIZES = [(80, 24), (160, 45)]


@pytest.mark.parametrize("size", COMPARE_SIZES, ids=[f"{w}x{h}" for w, h in COMPARE_SIZES])
def test_compare(snap_compare, tiny_service, size):
    from blt_chat.screens.compare import CompareScreen

    async def run_before(pilot):
        await _quiet(pilot)
        a = recorded_analysis(SAMPLE)
        base = pilot.app.service.config.patching
        configs = [base.replace(entropy_threshold=1.5), base.replace(scheme="space"),
                   base.replace(scheme="fixed", stride=4)]
        await pilot.app.push_screen(CompareScreen(pilot.app.service, a, configs))
        await pilot.pause()

    assert snap_compare(make_app(tiny_service), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", COMPARE_SIZES, ids=[f"{w}x{h}" for w, h in COMPARE_SIZES])
def test_inspector_surprisal(snap_compare, tiny_service, size):
    import math

    async def run_before(pilot):
        a, screen = await _open_recorded_inspector(pilot, SAMPLE)
        # recorded surprisals (bits): deterministic, no model call
        from blt_chat.alternatives import Alternatives

        n = len(a.data)
        bits = [4.0 + 3.5 * math.sin(i * 0.7) for i in range(n)]
        top = torch.zeros(n, 5, dtype=torch.int16)
        screen.alternatives = (a, screen.patching.config,
                               Alternatives(top, top.half(), top, top.half(), [1.0] * n, bits))
        screen.action_colour_by()
        await pilot.pause()

    assert snap_compare(make_app(tiny_service), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", COMPARE_SIZES, ids=[f"{w}x{h}" for w, h in COMPARE_SIZES])
def test_inspector_byte_cursor(snap_compare, tiny_service, size):
    from blt_chat.alternatives import Alternatives
    from blt_model.ids import OFFSET

    async def run_before(pilot):
        a, screen = await _open_recorded_inspector(pilot, "Zürich 🦊: patches scale better than tokens. 2024-12-13!")
        # recorded alternatives (no model call): "e", "a", "o", " ", "i" at falling odds
        n = len(a.data)
        ids = torch.tensor([[OFFSET + b for b in b"eao i"]] * n, dtype=torch.int16)
        p = torch.tensor([[0.4, 0.2, 0.1, 0.05, 0.03]] * n, dtype=torch.float16)
        screen.alternatives = (a, screen.patching.config,
                               Alternatives(ids, p, ids.flip(1), p, [2.0] * n, [3.0] * n))
        await pilot.press("f8", *["right"] * 9)
        await pilot.pause()

    assert snap_compare(make_app(tiny_service), terminal_size=size, run_before=run_before)
