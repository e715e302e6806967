"""Long analyses show progress and stop with Esc (issue 17): the inspector's entropy analysis
reports bytes done; Esc while it runs stops it (the previous text's view stays, the stats line
says so) instead of closing the screen, and a second Esc closes as usual."""

from __future__ import annotations

import pytest
import torch
from textual.widgets import TextArea

from blt_chat.app import BLTChatApp
from blt_chat.screens.inspector import InspectorScreen
from blt_chat.screens.inspector_look import analysis_progress_line
from blt_chat.service import _CHUNK, INSPECT_MAX_BYTES
from blt_chat.settings import Settings

from .chat_helpers import gate_calls, release_gate, until

pytestmark = pytest.mark.anyio
SHORT = "Byte Latent Transformer groups bytes into patches."
LONG = (SHORT + " ") * 4000  # about 200 KB: cut to INSPECT_MAX_BYTES, 32 chunks of the entropy model


def test_progress_line():
    assert analysis_progress_line(12288, 65536) == "Computing entropies … 12,288 / 65,536 bytes (18%) — Esc stops"


def test_analyze_reports_progress_and_stops(tiny_service):
    data = LONG.encode()[:5 * _CHUNK]
    reports = []
    a = tiny_service.analyze(data, progress=lambda done, total: reports.append((done, total)))
    assert torch.equal(a.entropies, tiny_service.analyze(data).entropies)  # callers without the new arguments
    assert reports == [(min(k * _CHUNK - 1, len(data)), len(data)) for k in range(1, 7)]
    stop_after = []
    assert tiny_service.analyze(data, should_stop=lambda: len(stop_after) >= 2,
                                progress=lambda done, total: stop_after.append(done)) is None
    assert stop_after == [_CHUNK - 1, 2 * _CHUNK - 1]  # stopped before the third chunk


def gate_entropy_model(service, monkeypatch, free_calls: int):
    """After `free_calls` calls, each call of the entropy model waits for the returned event."""
    return gate_calls(monkeypatch, service.model.entropy_model, "entropies", free_calls)


def stats(screen) -> str:
    return screen.stats_text


async def test_escape_stops_the_analysis_and_keeps_the_view(tiny_service, monkeypatch):
    gate = gate_entropy_model(tiny_service, monkeypatch, free_calls=2)  # the sample, the first chunk
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.patching is not None)
        screen = app.screen
        before, shown = screen.analysis, stats(screen)
        box = screen.query_one("#insp-input", TextArea)
        box.text = LONG
        box.focus()  # as a user who pasted: the text box has the keys
        await pilot.press("f5")
        first = analysis_progress_line(_CHUNK - 1, INSPECT_MAX_BYTES)
        await until(pilot, lambda: stats(screen) == first, timeout=30)  # the second chunk waits at the gate
        await pilot.press("escape")
        await until(pilot, lambda: "Analysis stopped at 2,047 / 65,536 bytes (Esc)" in stats(screen))
        assert app.screen is screen  # not closed
        assert shown in stats(screen)  # the previous text's numbers, still its view
        await release_gate(pilot, gate, tiny_service)
        await pilot.pause()
        assert screen.analysis is before and "Analysis stopped" in stats(screen)
        # a (shorter) text analysed to the end: its view
        box.text = LONG[:5 * _CHUNK]
        await pilot.press("f5")
        await until(pilot, lambda: screen.analysis is not before and screen.patching is not None, timeout=60)
        assert screen.analysis.data == LONG[:5 * _CHUNK].encode() and "Computing" not in stats(screen)
        await pilot.press("escape")  # nothing runs: Esc closes
        await until(pilot, lambda: not isinstance(app.screen, InspectorScreen))
        assert app.is_running


async def test_second_escape_closes_the_inspector(tiny_service, monkeypatch):
    gate = gate_entropy_model(tiny_service, monkeypatch, free_calls=2)
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.patching is not None)
        screen = app.screen
        screen.inspect_text(LONG)
        await until(pilot, lambda: "Computing entropies" in stats(screen) and "2,047" in stats(screen), timeout=30)
        await pilot.press("escape", "escape")
        await until(pilot, lambda: not isinstance(app.screen, InspectorScreen))
        await release_gate(pilot, gate, tiny_service)
        assert app.is_running and screen.analysis is not None and len(screen.analysis.data) < 1000
