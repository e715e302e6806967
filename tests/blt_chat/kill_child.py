"""The app run by test_chat_kill.py in a process of its own, to be killed with SIGKILL while an
answer streams: `python -m tests.blt_chat.kill_child STATUS_FILE` (data and config directories
from the environment). It answers one prompt completely, then streams a second answer without
end, writing its progress to STATUS_FILE (JSON) as it goes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import torch

from blt_chat.app import BLTChatApp
from blt_chat.service import ModelService
from blt_chat.settings import Settings
from blt_model import EOS_ID

from .conftest import tiny_config


def endless_service() -> ModelService:
    """The conftest's endless model: EOS never wins, so an answer streams until stopped."""
    svc = ModelService.random(tiny_config(), device="cpu", seed=0)
    with torch.no_grad():
        head = svc.model.decoder.head.weight
        head.mul_(20)
        head[EOS_ID] = 0
    return svc


def main(status: Path) -> None:
    torch.set_num_threads(1)
    app = BLTChatApp(service=endless_service(), settings=Settings(max_new_bytes=40, seed=1))

    def report(**kw) -> None:
        tmp = status.with_suffix(".tmp")
        tmp.write_text(json.dumps(kw))
        tmp.replace(status)

    async def auto_pilot(pilot) -> None:
        chat = app.chat
        while not chat._ready:  # composed and mounted (the pilot starts before that)
            await asyncio.sleep(0.02)
        chat.send("first prompt")
        while chat.generating or not chat.turns[-1].meta.get("complete"):
            await asyncio.sleep(0.02)
        done = bytes(chat.turns[-1].data).hex()
        app.settings.max_new_bytes = 100_000  # the second answer streams until the kill
        chat.send("second prompt")
        while True:
            await asyncio.sleep(0.05)
            report(completed=done, streamed=len(chat.turns[-1].data), file=str(chat.conversation_path))

    app.run(headless=True, auto_pilot=auto_pilot)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
