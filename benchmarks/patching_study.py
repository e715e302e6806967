"""Which patching wins at a fixed budget, when every variant pays for everything it trains?

    python benchmarks/patching_study.py --seed 0 &    # one process per seed (1 thread each);
    python benchmarks/patching_study.py --seed 1 &    # each resumes from its results file
    python benchmarks/patching_study.py --report      # the table over seeds (mean and spread)
    python benchmarks/patching_study.py --quick --seed 0 --results /tmp/study   # smoke run

The budget is CPU time of one thread (`time.process_time`, --cpu-minutes per variant), not wall
time: the machines this runs on are shared, and CPU time of a one-thread process barely changes
when other processes compete for the cores, while wall time does. Everything a variant needs
is charged to it: the entropy-patched variants pay for training their entropy model (and for
calibrating its threshold) out of the same budget, so their BLT trains for less; their BLT
training also pays for running the entropy model on every batch.

Variants (BLT tiny preset; all share data order, optimizer, learning rate, batch and seed):
  entropy, monotonic   entropy patching, global threshold / monotonic rule (paper's rules),
                       thresholds calibrated for a mean patch of 4.5 bytes
  fixed4, space        fixed stride 4 / space patching (no entropy model needed)
  *-diff               differential attention in encoder, global and decoder (per-head norm
                       starting at gain 0.1); *-diff-gain1 starts it at 1, as before issue 12
  *-mem2, *-gate       decoder memory of 2 patch latents (gate off) / the adaptive gate alone (M=1)
where * is --ablation-base (default space).

Scored on a held-out slice of the training file (the tail of every ~1 MB segment, see
`split_documents`), never on en_broad/valid.txt, whose figures are the shipped model's headline.
FLOPs/B is inference FLOPs per byte at the measured mean patch size (`BLT.flops_per_byte`,
minus the entropy model for schemes that need none).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from _common import write_json  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from blt_model import BLT, BLTConfig, calibrate_threshold  # noqa: E402
from blt_model.ids import OFFSET  # noqa: E402
from blt_model.nn.attention import SelfAttention  # noqa: E402
from blt_model.nn.model import lm_loss  # noqa: E402
from blt_model.train import (  # noqa: E402
    TrainingConfig,
    calibrate_entropy_threshold,
    make_loader,
    train_entropy_model,
    train_model,
)
from blt_model.train.data import ByteDataset, collate_batch, read_documents, split_documents  # noqa: E402
from blt_model.train.evaluation import compute_bits_per_byte  # noqa: E402

DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results" / "patching_study"
TARGET_MEAN_PATCH = 4.5
DIFF = {"encoder_attention": "differential", "global_attention": "differential",
        "decoder_attention": "differential"}
SCHEMES = {"entropy": {}, "monotonic": {"patching": {"use_monotonic": True}},
           "fixed4": {"patching": {"scheme": "fixed", "stride": 4}}, "space": {"patching": {"scheme": "space"}}}
ABLATIONS = {"diff": DIFF, "diff-gain1": DIFF, "mem2": {"decoder_memory_patches": 2},
             "gate": {"decoder_gate": True}}
console = Console(width=200)


def variants(base: str) -> dict[str, dict]:
    out = dict(SCHEMES)
    out.update({f"{base}-{k}": {**SCHEMES[base], **v} for k, v in ABLATIONS.items()})
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DATA / "en_broad" / "train.txt"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-minutes", type=float, default=2.0, help="CPU budget per variant (one thread)")
    p.add_argument("--entropy-cpu-minutes", type=float, default=0.75,
                   help="of that budget, what the entropy variants spend on their entropy model")
    p.add_argument("--ablation-base", default="space", choices=list(SCHEMES))
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-bytes", type=int, default=48_000, help="held-out bytes scored per variant")
    p.add_argument("--results", default=str(RESULTS), help="folder of the per-seed results files")
    p.add_argument("--report", action="store_true", help="print the table over every seed's results")
    p.add_argument("--markdown", action="store_true", help="with --report: the table as Markdown")
    p.add_argument("--quick", action="store_true", help="seconds per variant on 300 KB (smoke run)")
    a = p.parse_args(argv)
    if a.quick:
        a.cpu_minutes, a.entropy_cpu_minutes, a.eval_bytes, a.seq_len = 0.1, 0.04, 4000, 128
    return a


class CpuBudget:
    """on_step callback: stop once this process has used `seconds` of CPU since `start`."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start, self.steps = seconds, time.process_time(), 0

    def used(self) -> float:
        return time.process_time() - self.start

    def __call__(self, step: int, loss: float) -> bool:
        self.steps = step
        return self.used() >= self.seconds


def seconds_per_step(model: torch.nn.Module, batch: torch.Tensor, reps: int = 3) -> float:
    model.train()
    times = []
    for _ in range(reps + 1):
        t = time.process_time()
        loss, _ = lm_loss(model(batch), batch)
        loss.backward()
        times.append(time.process_time() - t)
    model.zero_grad(set_to_none=True)
    return sorted(times[1:])[reps // 2]


def train_for(model: torch.nn.Module, ds: ByteDataset, a: argparse.Namespace, seconds: float,
              entropy: bool = False) -> CpuBudget:
    probe = collate_batch([ds[i] for i in range(a.batch_size)])
    est = max(1, int(seconds / seconds_per_step(model.entropy_model if entropy else model, probe)))
    cfg = TrainingConfig(learning_rate=a.lr, warmup_steps=max(1, est // 10), max_sequence_length=a.seq_len,
                         batch_size=a.batch_size, patience=0, num_epochs=1000, schedule_steps=est,
                         eval_interval=10**9, log_interval=10**9, seed=a.seed, progress=False)
    budget = CpuBudget(seconds)
    loader = make_loader(ds, a.batch_size, train=True, seed=a.seed, rank=0, world_size=1)
    fit = train_entropy_model if entropy else train_model
    fit(model, loader, None, cfg, on_step=budget)
    return budget


@torch.no_grad()
def calibrate_monotonic(model: BLT, loader, target: float, max_batches: int = 16) -> float:
    diffs = []
    for i, ids in enumerate(loader):
        if i >= max_batches:
            break
        h = model.entropy_model.entropies(ids).float()
        d = (h[:, 1:] - h[:, :-1])[:, :-1]  # H_t - H_t-1 decides whether byte t + 1 starts a patch
        diffs.append(d[(ids[:, 2:] >= OFFSET)].cpu())
    return float(calibrate_threshold(torch.cat(diffs), target))


def entropy_model(a: argparse.Namespace, ds: ByteDataset, calib: ByteDataset, state: dict) -> BLT:
    """Train (or reload) this seed's entropy model; its CPU seconds are recorded in `state`."""
    path = Path(a.results) / f"seed{a.seed}_entropy.safetensors"
    torch.manual_seed(a.seed)
    model = BLT(BLTConfig.preset("tiny"))
    if "entropy" in state and path.exists():
        from safetensors.torch import load_file
        model.entropy_model.load_state_dict(load_file(path))
        return model
    t = time.process_time()
    train_for(model, ds, a, a.entropy_cpu_minutes * 60 * 0.95, entropy=True)
    loader = make_loader(calib, a.batch_size, train=False, rank=0, world_size=1)
    theta = calibrate_entropy_threshold(model, loader, TARGET_MEAN_PATCH, 16)
    theta_r = calibrate_monotonic(model, loader, TARGET_MEAN_PATCH)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.entropy_model.state_dict().items()}, str(path))
    state["entropy"] = {"cpu_seconds": time.process_time() - t, "threshold": theta, "monotonic_threshold": theta_r}
    return model


def run_variant(name: str, changes: dict, a: argparse.Namespace, ds: ByteDataset, spans: list[bytes],
                ent: BLT | None, state: dict) -> dict:
    cfg = BLTConfig.preset("tiny").replace(**changes)
    budget = a.cpu_minutes * 60
    charged = 0.0
    if cfg.patching.needs_entropies:
        e = state["entropy"]
        patching = cfg.patching.replace(entropy_threshold=e["threshold"], monotonic_threshold=e["monotonic_threshold"])
        cfg = cfg.replace(patching=patching, entropy_threshold_calibrated=True)
        charged = e["cpu_seconds"]
    torch.manual_seed(a.seed)
    model = BLT(cfg)
    if ent is not None:
        model.entropy_model.load_state_dict(ent.entropy_model.state_dict())
    model.freeze_entropy_model(True)
    if name.endswith("-diff-gain1"):
        for m in model.modules():
            if isinstance(m, SelfAttention) and getattr(m, "headwise_norm", None) is not None:
                m.headwise_norm.weight.data.fill_(1.0)
    b = train_for(model, ds, a, budget - charged)
    used = b.used()
    model.eval()
    nll = n = patches = 0.0
    for s in spans:
        r = compute_bits_per_byte(model, s, window=a.seq_len, batch_size=8)
        nll, n = nll + r["loss"] * r["bytes"], n + r["bytes"]
        patches += r["bytes"] / r["mean_patch_size"]
    mean_patch = n / patches
    flops = model.flops_per_byte(mean_patch, context_bytes=a.seq_len)
    if not cfg.patching.needs_entropies:
        flops = _without_entropy(model, mean_patch, a)  # the scheme needs no entropy model
    return {"bits_per_byte": nll / n / math.log(2), "mean_patch_size": mean_patch, "flops_per_byte": flops,
            "steps": b.steps, "cpu_seconds_blt": used, "cpu_seconds_charged": used + charged,
            "train_bytes": b.steps * a.batch_size * (a.seq_len - 1), "config": changes}


def _without_entropy(model: BLT, mean_patch: float, a: argparse.Namespace) -> float:
    """flops_per_byte minus the entropy model's share (its 2 x matrix parameters + attention)."""
    c = model.config
    mat = sum(p.numel() for n, p in model.entropy_model.named_parameters() if p.dim() == 2 and "embed" not in n)
    share = 2 * mat + 4.0 * c.entropy_model_layers * c.entropy_hidden_size * min(c.entropy_context_size, a.seq_len)
    return model.flops_per_byte(mean_patch, context_bytes=a.seq_len) - share


def run_seed(a: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    out = Path(a.results)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"seed{a.seed}.json"
    state = json.loads(path.read_text()) if path.exists() else {"seed": a.seed, "settings": {}, "results": {}}
    state["settings"] = {k: v for k, v in vars(a).items() if k not in ("report", "results")}
    docs, _ = read_documents(a.data)
    if a.quick:
        docs = [d[:300_000] for d in docs]
    train_docs, held = split_documents(docs, 0.05)
    per = max(1, a.eval_bytes // len(held))
    spans = [h[:per] for h in held]
    ds = ByteDataset(train_docs, a.seq_len, 1, mode="train", seed=a.seed)
    calib = ByteDataset(train_docs, a.seq_len, 1, mode="eval")
    todo = {k: v for k, v in variants(a.ablation_base).items() if k not in state["results"]}
    ent = None
    if any(BLTConfig.preset("tiny").replace(**v).patching.needs_entropies for v in todo.values()):
        ent = entropy_model(a, ds, calib, state)
    for name, changes in todo.items():
        console.print(f"seed {a.seed}: {name} ...")
        state["results"][name] = r = run_variant(name, changes, a, ds, spans, ent, state)
        console.print(f"seed {a.seed}: {name}: {r['bits_per_byte']:.4f} bpb, patch {r['mean_patch_size']:.2f}, "
                      f"{r['steps']} steps, {r['cpu_seconds_charged']:.0f} CPU-s charged")
        write_json(path, state, indent=1)  # a cut-off run resumes here


def summarise(runs: list[dict]) -> list[tuple]:
    """(variant, mean bpb, half-range, seeds, mean patch, FLOPs/B, steps, CPU-s) per variant."""
    names = list(dict.fromkeys(k for r in runs for k in r["results"]))
    rows = []
    for name in names:
        got = [r["results"][name] for r in runs if name in r["results"]]
        bpb = [g["bits_per_byte"] for g in got]
        rows.append((name, statistics.fmean(bpb), (max(bpb) - min(bpb)) / 2, len(bpb),
                     *(statistics.fmean(g[k] for g in got) for k in
                       ("mean_patch_size", "flops_per_byte", "steps", "cpu_seconds_charged"))))
    return rows


def verdict(rows: list[tuple]) -> str:
    schemes = sorted((r for r in rows if r[0] in SCHEMES), key=lambda r: r[1])
    if not schemes:
        return "no patching scheme has results yet"
    best = schemes[0]
    msg = f"winning scheme: {best[0]} ({best[1]:.4f} bits per byte)"
    close = [r for r in schemes[1:] if best[1] + best[2] >= r[1] - r[2]]
    if close:
        cheapest = min([best, *close], key=lambda r: r[5])
        msg += (f"; within the spread: {', '.join(r[0] for r in close)}; the cheapest at inference among them "
                f"is {cheapest[0]}")
    return msg


def report(a: argparse.Namespace) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(Path(a.results).glob("seed*.json"))]
    if not runs:
        raise SystemExit(f"no results in {a.results}: run with --seed first")
    rows, s = summarise(runs), runs[0]["settings"]
    title = (f"{s['cpu_minutes']:g} CPU-minutes per variant (1 thread, entropy model's "
             f"{s['entropy_cpu_minutes']:g} included for entropy variants), BLT tiny preset, "
             f"{Path(s['data']).parent.name}/{Path(s['data']).name}, batch {s['batch_size']} x {s['seq_len']}, "
             f"seeds {', '.join(str(r['seed']) for r in runs)}")
    cols = ("variant", "bits/byte held-out (mean ± half-range)", "seeds", "mean patch", "FLOPs/byte", "steps",
            "CPU-s charged")
    cells = [(n, f"{m:.4f} ± {h:.4f}", str(k), f"{p:.2f}", f"{f / 1e6:.2f}M", f"{st:.0f}", f"{c:.0f}")
             for n, m, h, k, p, f, st, c in rows]
    notes = [verdict(rows)] + [
        f"seed {r['seed']}: entropy model {r['entropy']['cpu_seconds']:.0f} CPU-s, threshold "
        f"{r['entropy']['threshold']:.3f} nats, monotonic {r['entropy']['monotonic_threshold']:.3f}"
        for r in runs if "entropy" in r]
    if a.markdown:
        print(f"`python benchmarks/patching_study.py --report`: {title}.\n")
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for c in cells:
            print("| " + " | ".join(c) + " |")
        print("\n" + "\n".join(f"- {n}" for n in notes))
        return
    t = Table(title=f"Patching study: {title}")
    for col in cols:
        t.add_column(col, justify="left" if col == "variant" else "right")
    for c in cells:
        t.add_row(*c)
    console.print(t)
    for n in notes:
        console.print(n)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    report(a) if a.report else run_seed(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
