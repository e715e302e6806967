"""The model as a compressor (issue 16): `blt compress` sizes next to the model's own bits per
byte and gzip -9, bzip2 -9 and xz -9e (alone and given the model's training text), and coding
speed at batch sizes 1, 8 and 32.

    python benchmarks/compression.py                     # the shipped model, CPU, one thread
    python benchmarks/compression.py --bytes 0           # whole files (slow on a CPU)

Sizes: each file (or --bytes of it, in --pieces evenly spaced pieces) is compressed with the default chunk size; the
table gives the payload (the range coders' streams) and the total with the header (layout,
model hash, platform, one CRC32 per chunk) in bits per byte, and the model's bits per byte
scored by a full forward on the same chunks (no context across chunk borders): the payload
must agree with it within 1%. Compressors given the training text: size(train + file) -
size(train). Speed: --speed-bytes of the first file compressed and decompressed (checked equal)
at each batch size, twice, in the order 1, 8, 32, 32, 8, 1; batch 1 is timed on the first
--batch1-bytes only (it is slow), which the table says.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from _common import busy_warning, write_json
from rich.console import Console
from rich.table import Table

from blt_model.codec import compress, decompress, default_chunk_size
from blt_model.codec.container import chunk_spans, unpack
from blt_model.ids import BOS_ID, OFFSET
from blt_model.io.checkpoint import load_model
from blt_model.io.shipped import shipped_model_path
from blt_model.train.evaluation import compressor_bits_per_byte, model_forward

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FILES = [DATA / "tinyshakespeare" / "valid.txt", DATA / "en_mix" / "valid.txt", DATA / "en_broad" / "valid.txt"]
TRAIN = DATA / "en_broad" / "train.txt"
COMPRESSORS = {"gzip": "gzip -9", "bz2": "bzip2 -9", "lzma": "xz -9e"}
console = Console(width=200)


@torch.no_grad()
def model_bits_per_byte(model, data: bytes, chunk_size: int, batch: int = 8) -> float:
    """The model's bits per byte over `data` cut into the compressor's chunks, each scored from
    BOS by a full forward (all 260 ids in the softmax, as `blt eval` scores)."""
    spans = chunk_spans(len(data), chunk_size)
    nll = 0.0
    for i in range(0, len(spans), batch):
        group = spans[i: i + batch]
        by_len: dict[int, list[list[int]]] = {}
        for s, e in group:
            by_len.setdefault(e - s, []).append([BOS_ID] + [b + OFFSET for b in data[s:e]])
        for rows in by_len.values():
            ids = torch.tensor(rows)
            logits, _ = model_forward(model, ids)
            logp = torch.log_softmax(logits[:, :-1].float(), -1)
            nll -= float(logp.gather(-1, ids[:, 1:, None]).sum())
    return nll / math.log(2) / max(1, len(data))


def spread_sample(data: bytes, size: int, pieces: int, chunk: int) -> bytes:
    """`pieces` evenly spaced pieces of `data`, about `size` bytes in all, each a whole number of
    chunks (so no chunk spans two pieces); all of `data` when size is 0 or covers it. (The
    valid files start alike: en_mix and en_broad begin with tinyshakespeare's valid text.)"""
    if not size or size >= len(data):
        return data
    piece = max(chunk, size // pieces // chunk * chunk)
    step = (len(data) - piece) // max(1, pieces - 1)
    return b"".join(data[i * step: i * step + piece] for i in range(pieces))


def size_row(model, path: Path, data: bytes, reference: bytes | None, batch: int) -> dict:
    t = time.perf_counter()
    blob = compress(model, data, batch_size=batch)
    seconds = time.perf_counter() - t
    c = unpack(blob)
    payload = 4 * len(c.payload)
    chunk = c.header.chunk_size
    row = {"file": f"{path.parent.name}/{path.name}", "bytes": len(data), "chunk_size": chunk,
           "chunks": c.header.num_chunks, "compressed_bytes": len(blob), "header_bytes": len(blob) - payload,
           "blt_bpb": 8 * len(blob) / len(data), "payload_bpb": 8 * payload / len(data),
           "model_bpb": model_bits_per_byte(model, data, chunk), "compress_seconds": seconds,
           "alone": {COMPRESSORS[k]: v for k, v in compressor_bits_per_byte(data).items()}}
    row["payload_vs_model"] = row["payload_bpb"] / row["model_bpb"] - 1
    if reference is not None:
        given = compressor_bits_per_byte(data, reference)
        row["given_train"] = {COMPRESSORS[k]: v for k, v in given.items()}
        row["beats_xz_given_train"] = row["blt_bpb"] < row["given_train"]["xz -9e"]
    return row


def _time_round_trip(model, piece: bytes, batch: int) -> tuple[float, float]:
    t = time.perf_counter()
    blob = compress(model, piece, batch_size=batch)
    t_c = time.perf_counter() - t
    t = time.perf_counter()
    back = decompress(model, blob)
    t_d = time.perf_counter() - t
    if back != piece:
        raise SystemExit(f"batch {batch}: the round trip changed the data")
    return t_c, t_d


def speed_rows(model, data: bytes, batch1_bytes: int, batches: list[int]) -> list[dict]:
    """KB/s per batch size, timed twice in the order 1, 8, 32, 32, 8, 1, so that a load that
    drifts during the run weighs on every batch size alike."""
    totals = {b: [0, 0.0, 0.0] for b in batches}  # bytes, compress s, decompress s
    for b in [*batches, *reversed(batches)]:
        piece = data[:batch1_bytes] if b == 1 else data
        t_c, t_d = _time_round_trip(model, piece, b)
        totals[b][0] += len(piece)
        totals[b][1] += t_c
        totals[b][2] += t_d
        console.print(f"  batch {b:>2}: {len(piece)} bytes, compress {len(piece) / t_c / 1024:.2f} KB/s, "
                      f"decompress {len(piece) / t_d / 1024:.2f} KB/s")
    rows = [{"batch": b, "bytes": n // 2, "compress_kb_s": n / tc / 1024, "decompress_kb_s": n / td / 1024}
            for b, (n, tc, td) in totals.items()]
    base = rows[0]
    for r in rows:
        r["speedup_compress"] = r["compress_kb_s"] / base["compress_kb_s"]
        r["speedup_decompress"] = r["decompress_kb_s"] / base["decompress_kb_s"]
    return rows


def print_tables(sizes: list[dict], speeds: list[dict], sliced: bool) -> None:
    t = Table(title="Bits per byte (lower is better)" + (" on a sample of each file" if sliced else ""))
    for col in ("file", "bytes", "blt (total)", "payload", "header B", "model", "payload/model",
                "gzip -9", "bzip2 -9", "xz -9e", "gzip +train", "bzip2 +train", "xz -9e +train"):
        t.add_column(col, justify="left" if col == "file" else "right")
    for r in sizes:
        given = r.get("given_train", {})
        t.add_row(r["file"], str(r["bytes"]), f"{r['blt_bpb']:.3f}", f"{r['payload_bpb']:.3f}", str(r["header_bytes"]),
                  f"{r['model_bpb']:.3f}", f"{100 * r['payload_vs_model']:+.2f}%",
                  *(f"{r['alone'][k]:.3f}" for k in COMPRESSORS.values()),
                  *(f"{given[k]:.3f}" if k in given else "-" for k in COMPRESSORS.values()))
    console.print(t)
    s = Table(title="Speed (KB/s, one thread)")
    for col in ("batch", "bytes timed", "compress", "decompress", "speedup (c/d)"):
        s.add_column(col, justify="right")
    for r in speeds:
        s.add_row(str(r["batch"]), str(r["bytes"]), f"{r['compress_kb_s']:.2f}", f"{r['decompress_kb_s']:.2f}",
                  f"{r['speedup_compress']:.1f}x / {r['speedup_decompress']:.1f}x")
    console.print(s)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--files", nargs="+", type=Path, default=FILES)
    p.add_argument("--train", type=Path, default=TRAIN, help="the model's training text ('' to skip)")
    p.add_argument("--bytes", type=int, default=65536, help="bytes of each file to compress (0: all)")
    p.add_argument("--pieces", type=int, default=8, help="... taken as this many evenly spaced pieces")
    p.add_argument("--speed-bytes", type=int, default=32736, help="32 chunks of 1023 bytes")
    p.add_argument("--batch1-bytes", type=int, default=4092, help="bytes timed at batch 1 (4 chunks of 1023)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "compression.json"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load = busy_warning(console)
    model = load_model(args.model or shipped_model_path(), device="cpu")
    reference = args.train.read_bytes() if str(args.train) and args.train.is_file() else None
    sizes = []
    for path in args.files:
        data = spread_sample(path.read_bytes(), args.bytes, args.pieces, default_chunk_size(model))
        console.print(f"compressing {path} ({len(data)} bytes)")
        sizes.append(size_row(model, path, data, reference, max(args.batches)))
    console.print(f"speed on {args.files[0]}")
    speeds = speed_rows(model, args.files[0].read_bytes()[: args.speed_bytes], args.batch1_bytes, args.batches)
    print_tables(sizes, speeds, bool(args.bytes))
    out = {"command": "python benchmarks/compression.py " + " ".join(sys.argv[1:]),
           "model": str(args.model or shipped_model_path()), "chunk_size": default_chunk_size(model),
           "threads": args.threads, "load_average": load, "torch": torch.__version__,
           "sizes": sizes, "speed": speeds,
           "targets": {"beats_xz_given_train_on_every_file": all(r.get("beats_xz_given_train") for r in sizes),
                       "batch32_speedup_at_least_8x": next((r["speedup_compress"] >= 8 and r["speedup_decompress"] >= 8
                                                            for r in speeds if r["batch"] == 32), None)}}
    console.print(f"targets: {out['targets']}")
    console.print(f"wrote {write_json(args.json, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
