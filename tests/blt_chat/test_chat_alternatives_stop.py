"""Long analyses show progress and stop with Esc (issue 17), for the inspector's second pass:
every byte's alternatives and the BLT's surprisal (F8's panel, F7's colours) report bytes done,
and Esc while the pass runs stops it (the screen and the byte cursor stay; F8 or F7 asks again)."""

from __future__ import annotations

import pytest

import blt_model.train.evaluation as evaluation
from blt_chat.app import BLTChatApp
from blt_chat.screens.inspector import InspectorScreen
from blt_chat.settings import Settings

from .chat_helpers import gate_calls, release_gate, until

pytestmark = pytest.mark.anyio
TEXT = "Byte Latent Transformer groups bytes into patches. " * 40  # 2 KB: 8 BLT windows of 256


@pytest.fixture
def short_context_service(tiny_service_factory):
    """The tiny model with a 256-byte context: a short text is several windows of the pass (and
    the inspector's plot of it is cheap to redraw)."""
    return tiny_service_factory(max_position_embeddings=256)


def gate_blt(monkeypatch, free_calls: int):
    """After `free_calls` windows, each BLT forward of the pass waits for the returned event."""
    return gate_calls(monkeypatch, evaluation, "model_forward", free_calls)


def test_the_pass_reports_bytes_done_and_stops(short_context_service):
    tiny_service = short_context_service
    a = tiny_service.analyze(TEXT.encode())
    cfg = tiny_service.config.patching
    reports: list = []
    alt = tiny_service.byte_alternatives(a, cfg, progress=lambda done, total: reports.append((done, total)))
    assert len(reports) >= 3 and reports[-1] == (len(a.data), len(a.data))
    assert [d for d, _ in reports] == sorted(d for d, _ in reports) and len(alt) == len(a.data)
    assert tiny_service.byte_alternatives(a, cfg, should_stop=lambda: len(reports) > 4,
                                          progress=lambda done, total: reports.append(done)) is None


async def test_escape_stops_the_pass_and_keeps_the_cursor(short_context_service, monkeypatch):
    tiny_service = short_context_service
    gate = gate_blt(monkeypatch, free_calls=1)
    # the compressed-size pass also runs the BLT (and holds the model): not this test's subject
    monkeypatch.setattr(tiny_service, "compressed_size", lambda *a, **kw: None)
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.patching is not None)
        screen = app.screen
        screen.inspect_text(TEXT)
        await until(pilot, lambda: screen.analysis is not None and len(screen.analysis.data) == len(TEXT))
        await until(pilot, lambda: screen.patching is not None)
        await pilot.press("f8")
        await until(pilot, lambda: screen._alt_done[0] > 0, timeout=30)  # one window done, the next waits
        await pilot.pause()
        panel = str(screen.query_one("#insp-alt").render())
        assert f"{screen._alt_done[0]:,} / {len(TEXT):,} bytes" in panel and "Esc stops" in panel
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and screen.cursor is not None  # the pass stopped, nothing closed
        assert "stopped at" in screen.alternatives_state()
        await release_gate(pilot, gate, tiny_service)
        await pilot.pause()
        assert screen.alternatives is None and "stopped at" in str(screen.query_one("#insp-alt").render())
        await pilot.press("right")  # moving does not start it again behind the user's back
        await pilot.pause()
        assert screen._alt_pending is None
        await pilot.press("f8")  # asking again does
        await until(pilot, lambda: screen.alternatives is not None, timeout=60)
        await pilot.press("escape")  # nothing runs: leaves the cursor
        await pilot.pause()
        assert screen.cursor is None and app.screen is screen
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, InspectorScreen))
