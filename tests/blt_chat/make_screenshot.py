"""Make docs/screenshot.svg with the app itself.

    python -m tests.blt_chat.make_screenshot [MODEL_DIR] [--out docs/screenshot.svg]

With a trained MODEL_DIR the screenshot shows a real answer from that model. Without one it
replays recorded events (deterministic entropies shaped like a trained model's) into the app
running a tiny random-weight model, which is what the committed screenshot shows until a
trained model ships.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

os.environ.setdefault("BLT_CHAT_CONFIG_DIR", tempfile.mkdtemp(prefix="blt-chat-shot-"))

from blt_chat.app import BLTChatApp  # noqa: E402
from blt_chat.service import ModelService  # noqa: E402
from blt_chat.settings import Settings  # noqa: E402

from .chat_helpers import SAMPLE_ANSWER, FakeClock, begin_fake_answer, post_events, recorded_events  # noqa: E402
from .conftest import tiny_config  # noqa: E402

PROMPT = "What is a byte latent transformer?"


async def shoot(model_dir: str | None, out: Path, size=(120, 34)) -> None:
    if model_dir:
        svc = ModelService.load(model_dir, "auto")
        app = BLTChatApp(service=svc, settings=Settings(max_new_bytes=300, seed=0, temperature=0.7),
                         save=False)
    else:
        svc = ModelService.random(tiny_config(), device="cpu")
        svc.name = "blt-tiny (demo: recorded events)"
        app = BLTChatApp(service=svc, settings=Settings(), save=False, clock=FakeClock(0.004))
    async with app.run_test(size=size) as pilot:
        app.chat.prompt_box.cursor_blink = False
        app.chat.transcript.clear()
        if model_dir:
            app.chat.send(PROMPT)
            await app.workers.wait_for_complete()
        else:
            gen_id = begin_fake_answer(app, PROMPT)
            post_events(app, gen_id, recorded_events(SAMPLE_ANSWER)[:-14])
            await pilot.pause(0.3)
        app.chat.transcript.flush()
        app.chat._publish()
        app.clear_notifications()
        await pilot.pause(0.2)
        out.parent.mkdir(parents=True, exist_ok=True)
        app.save_screenshot(filename=out.name, path=str(out.parent))
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", nargs="?")
    ap.add_argument("--out", default="docs/screenshot.svg")
    args = ap.parse_args()
    asyncio.run(shoot(args.model_dir, Path(args.out)))


if __name__ == "__main__":
    main()
