"""Make docs/compare.svg and docs/alternatives.svg (issue 17) with the app and the shipped model.

    python -m tests.blt_chat.make_inspector_screenshots [MODEL_DIR]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("BLT_CHAT_CONFIG_DIR", tempfile.mkdtemp(prefix="blt-chat-shot-"))
os.environ.setdefault("BLT_CHAT_DATA_DIR", tempfile.mkdtemp(prefix="blt-chat-shot-"))

from blt_chat.app import BLTChatApp  # noqa: E402
from blt_chat.screens.compare import CompareScreen  # noqa: E402
from blt_chat.screens.inspector import InspectorScreen  # noqa: E402
from blt_chat.service import ModelService, find_shipped_model  # noqa: E402
from blt_chat.settings import Settings  # noqa: E402

TEXT = ("Byte Latent Transformer groups bytes into patches. Where the next byte is hard to predict, "
        "a new patch starts: Zürich, 2024-12-13.")


async def until(pilot, condition, timeout: float = 120.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise TimeoutError("the app did not get there in time")


async def shoot(model_dir: str, out: Path, size=(120, 34)) -> None:
    svc = ModelService.load(model_dir, "cpu")
    app = BLTChatApp(service=svc, settings=Settings(), save=False)
    async with app.run_test(size=size) as pilot:
        screen = InspectorScreen(svc, text=TEXT)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.patching is not None and screen.compressed is not None)
        base = screen.patching.config
        configs = [base, base.replace(scheme="entropy", use_monotonic=False, entropy_threshold=1.5),
                   base.replace(scheme="entropy", use_monotonic=True), base.replace(scheme="fixed", stride=4)]
        await app.push_screen(CompareScreen(svc, screen.analysis, configs))
        await pilot.pause(0.3)
        app.clear_notifications()
        app.save_screenshot(filename="compare.svg", path=str(out))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        screen.query_one("#insp-input").cursor_blink = False
        await pilot.press("f8", *["right"] * TEXT.index("ü"))
        await until(pilot, lambda: screen._current_alternatives() is not None)
        await pilot.pause(0.3)
        app.clear_notifications()
        app.save_screenshot(filename="alternatives.svg", path=str(out))
    print(f"wrote {out / 'compare.svg'} and {out / 'alternatives.svg'}")


if __name__ == "__main__":
    model = sys.argv[1] if len(sys.argv) > 1 else str(find_shipped_model())
    asyncio.run(shoot(model, Path("docs")))
