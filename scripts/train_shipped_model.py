"""Train the shipped model: continue a trained BLT on a new corpus, with the patching the study chose.

    python scripts/train_shipped_model.py --init assets/models/blt-tiny \
        --data ../shared/data/en_broad/train.txt --out runs/shipped_v2 --scheme space --minutes 90
    python scripts/train_shipped_model.py --out runs/shipped_v2 --resume    # after a cut-off

Stages (each resumable; the run's own `run.json` keeps the settings):
  1. for entropy schemes, `--entropy-minutes` of further training of the (copied) entropy model on
     the new corpus, then the threshold is calibrated for a mean patch of 4.5 bytes;
  2. the BLT, entropy model frozen, for `--minutes` with a cosine decay over that time budget.
Checkpoints are selected on a slice held out of the training file itself (the tail 5% of each
~1 MB segment: every source in the file is represented), never on a validation file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from blt_model import BLT, load_model
from blt_model.io.files import atomic_write_text
from blt_model.train import (
    TrainingConfig,
    calibrate_entropy_threshold,
    make_loader,
    train_entropy_model,
    train_model,
)
from blt_model.train.data import ByteDataset, read_documents, split_documents

SCHEMES = {"entropy": {"scheme": "entropy", "use_monotonic": False},  # PatchingConfig changes
           "monotonic": {"scheme": "entropy", "use_monotonic": True},
           "fixed4": {"scheme": "fixed", "stride": 4},
           "space": {"scheme": "space"}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", help="trained model directory to start from")
    p.add_argument("--data", nargs="+", help="training text files")
    p.add_argument("--out", required=True)
    p.add_argument("--scheme", choices=list(SCHEMES), default="space")
    p.add_argument("--memory", type=int, default=None, help="decoder memory M (default: the init model's)")
    p.add_argument("--gate", action="store_true", help="switch the decoder gate on")
    p.add_argument("--minutes", type=float, default=90.0, help="wall-clock budget of the BLT stage")
    p.add_argument("--entropy-minutes", type=float, default=10.0)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--eval-interval", type=int, default=100)
    p.add_argument("--eval-batches", type=int, default=24)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    return p.parse_args(argv)


def resolve_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, or with --resume the stored run's own arguments (and this --threads)."""
    a = parse_args(argv)
    out = Path(a.out)
    run_file = out / "run.json"
    if a.resume:
        if not run_file.is_file():
            raise SystemExit(f"{out}: no run to resume (no run.json); start without --resume")
        stored = json.loads(run_file.read_text())
        a = argparse.Namespace(**{**stored["args"], "resume": True, "threads": a.threads})
    elif run_file.exists():
        raise SystemExit(f"{out}: holds a run already; use --resume or another --out")
    elif not a.init or not a.data:
        raise SystemExit("--init DIR and --data FILE are needed to start a run")
    return a


def read_data(a: argparse.Namespace) -> tuple[list[bytes], DataLoader, DataLoader]:
    """-> (training documents, training loader, loader of the slice held out for selection)."""
    docs, stats = read_documents(a.data)
    train_docs, held = split_documents(docs, 0.05)
    tr = ByteDataset(train_docs, a.seq_len, 1, mode="train", seed=a.seed)
    va = ByteDataset(held, a.seq_len, 1, mode="eval")
    tl = make_loader(tr, a.batch_size, train=True, seed=a.seed, rank=0, world_size=1)
    vl = make_loader(va, a.batch_size, train=False, rank=0, world_size=1)
    print(f"train: {stats.summary()}; held out for selection: {va.num_bytes:,} bytes in {len(held)} slices",
          flush=True)
    return train_docs, tl, vl


def build_model(a: argparse.Namespace, init: BLT, run_file: Path) -> tuple[BLT, dict]:
    """The init model's weights in the chosen config -> (model, the run record, written to run.json)."""
    changes = {}
    if a.memory:
        changes["decoder_memory_patches"] = a.memory
    if a.gate:
        changes["decoder_gate"] = True
    cfg = init.config.with_patching(**SCHEMES[a.scheme]).replace(**changes)
    if a.resume and "model" in json.loads(run_file.read_text()):
        cfg = type(cfg).from_dict(json.loads(run_file.read_text())["model"])  # holds the calibrated threshold
    model = BLT(cfg)
    missing, unexpected = model.load_state_dict(init.state_dict(), strict=False)
    if unexpected:
        raise SystemExit(f"{a.init}: weights this config has no place for: {unexpected[:3]}")
    run_file.parent.mkdir(parents=True, exist_ok=True)
    record = {"args": {k: v for k, v in vars(a).items() if k != "resume"}, "command": " ".join(sys.argv),
              "new_parameters": missing}
    if not a.resume:
        atomic_write_text(run_file, json.dumps(record, indent=2) + "\n")
    return model, record


def training_config(a: argparse.Namespace, minutes: float) -> TrainingConfig:
    return TrainingConfig(learning_rate=a.lr, warmup_steps=a.warmup, batch_size=a.batch_size,
                          eval_batch_size=a.batch_size, max_sequence_length=a.seq_len, num_epochs=100,
                          max_minutes=minutes, eval_interval=a.eval_interval, eval_max_batches=a.eval_batches,
                          patience=0, seed=a.seed, log_interval=10, progress=False)


def entropy_stage(a: argparse.Namespace, model: BLT, record: dict, train_docs: list[bytes], tl: DataLoader,
                  vl: DataLoader, out: Path) -> None:
    """Entropy schemes: more training of the entropy model, then the threshold (once per run)."""
    cfg = model.config
    run_file = out / "run.json"
    needs_entropy = cfg.patching.needs_entropies
    done = out / "entropy" / "done.json"
    if needs_entropy and a.entropy_minutes > 0 and not done.exists():
        train_entropy_model(model, tl, vl, training_config(a, a.entropy_minutes), out_dir=out / "entropy",
                            resume=a.resume)
        calib = make_loader(ByteDataset(train_docs, a.seq_len, 1, mode="eval"), a.batch_size, train=False,
                            rank=0, world_size=1)
        theta = calibrate_entropy_threshold(model, calib, cfg.target_mean_patch_size, 32)
        print(f"entropy threshold {theta:.4f} nats", flush=True)
        atomic_write_text(done, json.dumps({"threshold": theta}) + "\n")
        record["model"] = model.config.to_dict()
        atomic_write_text(run_file, json.dumps(record, indent=2) + "\n")
    elif needs_entropy and done.exists():
        model.entropy_model.load_state_dict(load_model(out / "entropy" / "best").entropy_model.state_dict())
    elif not a.resume:
        record["model"] = model.config.to_dict()
        atomic_write_text(run_file, json.dumps(record, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    a = resolve_args(argv)
    out = Path(a.out)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    init = load_model(a.init)  # before reading 22 MB of data: a bad --init fails at once
    train_docs, tl, vl = read_data(a)
    model, record = build_model(a, init, out / "run.json")
    entropy_stage(a, model, record, train_docs, tl, vl, out)
    model.freeze_entropy_model(True)
    _, best = train_model(model, tl, vl, training_config(a, a.minutes), out_dir=out, resume=a.resume)
    print(f"best held-out loss {best:.4f} nats/byte = {best / 0.6931471805599453:.4f} bits/byte", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, OSError) as e:  # CheckpointError and DataError are ValueErrors
        sys.exit(f"train_shipped_model: {e}")
