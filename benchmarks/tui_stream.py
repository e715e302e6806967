"""How fast the chat view absorbs a byte stream, and what one flush costs as the transcript grows.

    python benchmarks/tui_stream.py [--bytes 20000]

Runs the real app headless (Textual's test driver) with a tiny random-weight model loaded but
idle: a producer thread posts recorded ByteEvents as fast as it can (like the generation worker
does, with post_message), and the view flushes at its normal 25 Hz. Then, with 1k/10k/100k bytes
already in the transcript, it times one flush of 64 new bytes plus the repaint of the visible
lines. The flush cost must stay flat as the transcript grows (the Line-API view re-lays out only
the new bytes and re-renders only changed lines).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("BLT_CHAT_CONFIG_DIR", tempfile.mkdtemp(prefix="blt-chat-bench-"))

from blt_chat.app import BLTChatApp, GenerationEvent, Turn  # noqa: E402
from blt_chat.render import ByteRecord  # noqa: E402
from blt_chat.service import ModelService  # noqa: E402
from blt_chat.settings import Settings  # noqa: E402
from blt_model import BLTConfig  # noqa: E402

TINY = BLTConfig(hidden_size=32, intermediate_size=64, num_heads=2, global_hidden_size=64,
                 global_intermediate_size=128, global_num_heads=2, global_layers=1, encoder_layers=1,
                 decoder_layers=1, entropy_model_layers=1, entropy_hidden_size=32, entropy_num_heads=2,
                 entropy_intermediate_size=64, ngram_vocab_size=64, cross_attn_k=2, window_size=32,
                 entropy_context_size=32)

TEXT = ("Byte Latent Transformer: bytes, not tokens — ünïcödé 漢字 🦊; patches start where the next "
        "byte is hard to predict.\n").encode()


def records(n: int) -> list[ByteRecord]:
    data = (TEXT * (n // len(TEXT) + 1))[:n]
    out, patch = [], 1
    for i, b in enumerate(data):
        h = 0.3 + 2.5 * abs(math.sin(i * 0.41))
        start = h > 1.5
        patch += start
        out.append(ByteRecord(byte=b, entropy=h, patch_start=start, patch_index=patch))
    return out


def begin(app: BLTChatApp) -> int:
    app.gen_id += 1
    app.turns.append(Turn("assistant"))
    app._current = app.turns[-1]
    app.generating = True
    app.status.stats.reset(app.clock(), 1.5, "entropy")
    app.transcript.begin_answer()
    return app.gen_id


async def absorb_rate(n: int) -> tuple[float, int, int]:
    app = BLTChatApp(service=ModelService.random(TINY, device="cpu"), settings=Settings(), save=False)
    async with app.run_test(size=(120, 40)) as pilot:
        gen_id = begin(app)
        evs = records(n)
        tr = app.transcript
        f0, b0 = tr.flush_count, tr.strips_built
        t0 = time.perf_counter()

        def producer():
            for ev in evs:
                app.post_message(GenerationEvent(gen_id, ev))

        th = threading.Thread(target=producer)
        th.start()
        while tr.bytes_absorbed < n or tr.pending:
            await pilot.pause(0.005)
        dt = time.perf_counter() - t0
        th.join()
        return n / dt, tr.flush_count - f0, tr.strips_built - b0


async def flush_cost(sizes: list[int], reps: int = 30) -> list[tuple[int, float, float]]:
    out = []
    for size in sizes:
        app = BLTChatApp(service=ModelService.random(TINY, device="cpu"), settings=Settings(), save=False)
        async with app.run_test(size=(120, 40)) as pilot:
            begin(app)
            tr = app.transcript
            tr.feed_many(records(size))
            tr.flush()
            await pilot.pause(0.05)
            extra = records(64 * reps)
            flush_t, paint_t = [], []
            for r in range(reps):
                tr.feed_many(extra[r * 64:(r + 1) * 64])
                t0 = time.perf_counter()
                tr.flush()
                t1 = time.perf_counter()
                # the repaint Textual does next: render every visible line (cached unless changed)
                for y in range(tr.size.height):
                    tr.render_line(y)
                t2 = time.perf_counter()
                flush_t.append(t1 - t0)
                paint_t.append(t2 - t1)
            flush_t.sort()
            paint_t.sort()
            out.append((size, flush_t[reps // 2] * 1e3, paint_t[reps // 2] * 1e3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=int, default=20_000, help="bytes for the absorb test")
    args = ap.parse_args()
    rate, flushes, builds = asyncio.run(absorb_rate(args.bytes))
    print(f"absorb: {args.bytes} bytes from a fast producer thread (post_message per byte)")
    print(f"  {rate:12,.0f} bytes/s absorbed   {flushes} flushes   {builds} strips built")
    print()
    print(f"{'transcript bytes':>17} | {'flush 64 B (ms)':>15} | {'repaint visible (ms)':>20}")
    print(f"{'-' * 17}-+-{'-' * 15}-+-{'-' * 20}")
    for size, f_ms, p_ms in asyncio.run(flush_cost([1_000, 10_000, 100_000])):
        print(f"{size:>17,} | {f_ms:>15.3f} | {p_ms:>20.3f}")


if __name__ == "__main__":
    main()
