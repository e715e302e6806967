"""What one move of the inspector's byte cursor costs as the inspected text grows.

    python benchmarks/inspector_cursor.py [--sizes 512 2048 4096] [--moves 20]

Runs the real app headless (Textual's test driver) with a tiny random-weight model: the
inspector analyses a text of each size, its byte cursor (F8) waits for the alternatives pass,
then Right is pressed `--moves` times and the mean wall time per move (key handled, screen
repainted) is printed. A move must not grow with the text: the plot is laid out once per text
(widgets/entropy_plot.py) and a move restyles one column.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("BLT_CHAT_CONFIG_DIR", tempfile.mkdtemp(prefix="blt-chat-bench-"))
os.environ.setdefault("BLT_CHAT_DATA_DIR", tempfile.mkdtemp(prefix="blt-chat-bench-"))

from _common import busy_warning  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from blt_chat.app import BLTChatApp  # noqa: E402
from blt_chat.screens.inspector import InspectorScreen  # noqa: E402
from blt_chat.service import ModelService, tiny_random_config  # noqa: E402
from blt_chat.settings import Settings  # noqa: E402

TEXT = "Byte Latent Transformer groups bytes into patches: ünïcödé, 2024-12-13. "


async def time_moves(service: ModelService, n_bytes: int, moves: int) -> float:
    """Mean seconds per cursor move over a text of about n_bytes bytes."""
    text = (TEXT * (n_bytes // len(TEXT.encode()) + 1)).encode()[:n_bytes].decode("utf-8", "ignore")
    app = BLTChatApp(service=service, settings=Settings(), save=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = InspectorScreen(service, text=text)
        await app.push_screen(screen)
        while screen.patching is None:
            await pilot.pause(0.05)
        await pilot.press("f8")
        while screen._current_alternatives() is None:  # the background pass: not what is timed
            await pilot.pause(0.1)
        await pilot.pause(0.2)
        start = time.perf_counter()
        for _ in range(moves):
            await pilot.press("right")
        return (time.perf_counter() - start) / moves


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 4096])
    ap.add_argument("--moves", type=int, default=20)
    args = ap.parse_args()
    console = Console()
    busy_warning(console)
    service = ModelService.random(tiny_random_config(), device="cpu", seed=0)
    service.compressed_size = lambda *a, **kw: None  # the size line's pass would compete for the CPU
    table = Table(title="inspector byte cursor: one move (Right), tiny random model")
    table.add_column("text bytes", justify="right")
    table.add_column("ms per move", justify="right")
    for n in args.sizes:
        table.add_row(f"{n:,}", f"{1000 * asyncio.run(time_moves(service, n, args.moves)):.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
