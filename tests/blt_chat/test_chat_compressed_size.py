"""The inspector shows the analysed text's real size compressed with this model next to xz's
(issue 17), measured in a thread worker that Esc stops."""

from __future__ import annotations

import lzma
import threading

import pytest

from blt_chat.app import BLTChatApp
from blt_chat.inspect_view import size_line
from blt_chat.screens.inspector import InspectorScreen
from blt_chat.settings import Settings
from blt_model.codec import compress
from blt_model.codec.container import unpack

from .chat_helpers import until

pytestmark = pytest.mark.anyio
TEXT = "Byte Latent Transformer groups bytes into patches."


def test_size_line():
    assert size_line(30, 15, 60, 8.0) == ("30 bytes with this model, 4.00 bpb; xz 60 bytes"
                                          " (coded alone 15 bytes, 2.00 bpb)")


def legend(screen) -> str:
    return str(screen.query_one("#insp-legend").render())


async def test_compressed_size_is_the_codecs_and_xz(tiny_service, monkeypatch):
    threads = []
    measure = tiny_service.compressed_size

    def recording(*args, **kw):
        threads.append(threading.current_thread())
        return measure(*args, **kw)

    monkeypatch.setattr(tiny_service, "compressed_size", recording)
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = InspectorScreen(tiny_service, text=TEXT)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.compressed is not None, timeout=60)
        data = TEXT.encode()
        blob = compress(tiny_service.model, data)
        n = len(blob)
        coded = unpack(blob).payload.nbytes
        xz = len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
        assert screen.compressed[1] == n
        assert f"{n} bytes with this model, {8 * n / len(data):.2f} bpb; xz {xz} bytes (coded alone {coded} bytes" in legend(screen)
        assert threads and threading.main_thread() not in threads  # off the UI thread


async def test_escape_stops_a_long_compression(tiny_service):
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = InspectorScreen(tiny_service, text=TEXT * 200)  # about 10 KB: minutes on the CPU
        await app.push_screen(screen)
        await until(pilot, lambda: "compressing" in legend(screen), timeout=60)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is not screen)
        # the worker lets go of the model within a step
        assert tiny_service.lock.acquire(timeout=10)
        tiny_service.lock.release()
        assert screen.compressed is None
