"""SIGKILL while an answer streams: the conversation file parses and holds every completed answer
(and the streamed part up to the last once-a-second save); the app reopens it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blt_chat import store
from blt_chat.app import BLTChatApp
from blt_chat.settings import Settings

from .chat_helpers import until

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def run_until_streaming(status: Path, min_seconds: float = 2.5) -> dict:
    """Start the child app, wait until its second answer has streamed for `min_seconds` (a
    save a second: at least two saves), SIGKILL it; the last status it wrote."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.blt_chat.kill_child", str(status)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, streaming_since = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if streaming_since is None and status.exists():
                streaming_since = time.monotonic()
            if streaming_since is not None and time.monotonic() - streaming_since >= min_seconds:
                break
        assert proc.poll() is None, proc.stderr.read().decode(errors="replace")[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        return json.loads(status.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


async def test_sigkill_while_streaming_loses_no_completed_answer(tmp_path, tiny_service):
    last = run_until_streaming(tmp_path / "status.json")
    assert last["streamed"] > 0
    (path,) = store.files(store.conversations_dir())
    assert str(path) == last["file"]
    json.loads(path.read_text())  # the file parses as it is
    conv = store.read_conversation(path)
    roles = [t.role for t in conv.turns]
    assert roles == ["user", "assistant", "user", "assistant"], roles
    first, partial = conv.turns[1], conv.turns[3]
    assert bytes(first.data).hex() == last["completed"] and len(first.data) == 40
    assert first.meta["complete"] is True and len(first.records) == 40
    assert partial.meta["complete"] is False and len(partial.data) > 0  # saved while it streamed

    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=8))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert [bytes(t.data) for t in app.chat.turns] == [bytes(t.data) for t in conv.turns]
        assert app.chat.turns[3].note.startswith("■ interrupted")
        assert "■ interrupted" in app.chat.transcript.plain_text()
        app.chat.send("go on")
        await until(pilot, lambda: not app.chat.generating)
        assert app.errors == []
