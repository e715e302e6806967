"""Is BLT worth it at this scale? Every variant trained for the same wall-clock time (issue 7).

    python benchmarks/patching_study.py --json runs/study/patching_study.json          # full run
    python benchmarks/patching_study.py --quick --json /tmp/study.json                 # smoke run

Each variant is trained for --minutes of wall-clock time (default 4) on the same data
(default ../shared/data/en_mix/train.txt) with the same optimizer, learning rate, batch and
sequence length, from the same seed, one after the other:

  byte-transformer  a plain byte-level transformer: every byte its own patch, no local models,
                    no hash tables; its depth is chosen so its parameter count is closest to the
                    tiny BLT's (hash tables and entropy model excluded); both counts are printed
  entropy           BLT tiny, entropy patching, global threshold calibrated to a mean patch of 4.5
  monotonic         BLT tiny, entropy patching, monotonic rule (H_t - H_t-1 > theta_r), theta_r
                    calibrated the same way
  fixed4            BLT tiny, fixed stride 4
  space             BLT tiny, space patching
  differential      BLT tiny, entropy patching, differential attention in the encoder, global and
                    decoder (the entropy model is shared, so it stays standard)
  memory2-gate      BLT tiny, entropy patching, decoder reads the last 2 patch latents, gated
  memory3-gate      the same with 3 latents

Entropy-patched variants share one entropy model: trained once here for --entropy-minutes (not
counted in their budgets; the table says so), or taken from --entropy-model DIR (any model
directory whose entropy model fits). Its weights are copied into every BLT and frozen
(`model.freeze_entropy_model()`), so training is stage 2 of blt_model.training (`train_model`).

Training uses `blt_model.training.train_model` with `max_minutes`; no evaluation runs inside the
budget. The cosine schedule's horizon is each variant's own estimated step count in the budget
(timed over a few probe steps before training), so every variant decays its learning rate over
its budget. Columns:

  bpb             bits per byte on each validation file; to keep it fast, --eval-bytes per file
                  (default 60000) in --eval-chunks evenly spaced spans (en_mix/valid.txt starts with
                  the tinyshakespeare validation text, so a plain prefix would score the same text
                  twice), windows of --seq-len ids with half-window context (compute_bits_per_byte)
  patch           mean patch size on the en_mix validation bytes
  FLOPs/B         inference FLOPs per byte at the training context (BLT.flops_per_byte(mean patch
                  size); the baseline by the same formula as the global stack with patch size 1)
  gen B/s         cached generation: --gen-bytes after a --gen-prompt-byte prompt, sampled at
                  temperature 1 (BLT: generate_stream; baseline: its own KV-cached loop)
  train B/s       training bytes (scored targets) per second of the budget
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from _common import busy_warning  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from blt_model import BLT, BLTConfig, calibrate_threshold, encode  # noqa: E402
from blt_model.checkpoint import load_model, save_model  # noqa: E402
from blt_model.data import ByteDataset, collate_batch, read_documents  # noqa: E402
from blt_model.evaluation import compute_bits_per_byte  # noqa: E402
from blt_model.generation import generate_stream  # noqa: E402
from blt_model.ids import BOE_ID, EOS_ID, OFFSET, VOCAB_SIZE  # noqa: E402
from blt_model.layers import RMSNorm  # noqa: E402
from blt_model.model import lm_loss  # noqa: E402
from blt_model.sampling import sample, sampling_distribution  # noqa: E402
from blt_model.training import (  # noqa: E402
    TrainingConfig,
    calibrate_entropy_threshold,
    make_loader,
    train_entropy_model,
    train_model,
)
from blt_model.transformer import TransformerStack  # noqa: E402

DATA = REPO.parent / "shared" / "data"
DEFAULT_TRAIN = DATA / "en_mix" / "train.txt"
DEFAULT_VALID = [DATA / "en_mix" / "valid.txt", DATA / "tinyshakespeare" / "valid.txt"]
TARGET_MEAN_PATCH = 4.5
ENTROPY_FIELDS = ("entropy_model_layers", "entropy_hidden_size", "entropy_num_heads", "entropy_intermediate_size",
                  "entropy_context_size", "entropy_attention")

VARIANTS: dict[str, tuple[str, dict | None]] = {
    "byte-transformer": ("plain byte-level transformer (every byte a patch)", None),
    "entropy": ("BLT tiny, entropy patching (global threshold)", {}),
    "monotonic": ("BLT tiny, entropy patching (monotonic)", {"use_monotonic": True}),
    "fixed4": ("BLT tiny, fixed stride 4", {"patching_scheme": "fixed", "patch_stride": 4}),
    "space": ("BLT tiny, space patching", {"patching_scheme": "space"}),
    "differential": ("BLT tiny, entropy patching, differential attention",
                     {"encoder_attention": "differential", "global_attention": "differential",
                      "decoder_attention": "differential"}),
    "memory2-gate": ("BLT tiny, entropy patching, decoder memory 2 patches + gate",
                     {"decoder_memory_patches": 2, "decoder_gate": True}),
    "memory3-gate": ("BLT tiny, entropy patching, decoder memory 3 patches + gate",
                     {"decoder_memory_patches": 3, "decoder_gate": True}),
}

console = Console()
if not console.is_terminal:
    console = Console(width=200)


# --- the baseline ---------------------------------------------------------------------------

class ByteTransformer(nn.Module):
    """Byte embedding -> causal transformer over every byte -> 260 logits (no patches)."""

    def __init__(self, dim: int, heads: int, ffn: int, layers: int, rope_theta: float = 10000.0) -> None:
        super().__init__()
        self.dim, self.num_layers = dim, layers
        self.embed = nn.Embedding(VOCAB_SIZE, dim)
        self.stack = TransformerStack(dim, heads, ffn, layers, kind="standard", window=None, rope_theta=rope_theta)
        self.norm = RMSNorm(dim)
        self.head = nn.Linear(dim, VOCAB_SIZE, bias=False)
        self.apply(BLT._init_weights)

    def forward(self, ids: torch.Tensor, cache=None) -> torch.Tensor:
        return self.head(self.norm(self.stack(self.embed(ids), cache=cache)))

    def freeze_entropy_model(self, frozen: bool = True) -> None:
        """train_model calls this on BLTs; a plain byte LM has no entropy model."""

    def flops_per_byte(self, context_bytes: int) -> float:
        """BLT.flops_per_byte's global-stack formula with a patch size of 1."""
        mat = sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and "embed" not in n)
        return float(2 * mat + 4.0 * self.num_layers * self.dim * context_bytes / 2)


def blt_params(model: BLT) -> int:
    """Parameters a BLT trains in stage 2, hash tables excluded."""
    b = model.parameter_breakdown()
    return b["total"] - b["hash_embeddings"] - b["entropy_model"]


def pick_baseline(target: int, dim: int, heads: int, ffn: int, layers: int) -> ByteTransformer:
    if layers > 0:
        return ByteTransformer(dim, heads, ffn, layers)
    best = None
    for n in range(1, 33):
        m = ByteTransformer(dim, heads, ffn, n)
        p = sum(x.numel() for x in m.parameters())
        if best is None or abs(p - target) < best[0]:
            best = (abs(p - target), m)
    return best[1]


# --- helpers --------------------------------------------------------------------------------

def _mask_eos(module, args, out):
    out[..., EOS_ID] = float("-inf")
    return out


class CountingCollate:
    """collate_batch that counts the scored targets it hands out."""

    def __init__(self) -> None:
        self.bytes = 0

    def __call__(self, batch):
        out = collate_batch(batch)
        self.bytes += int((out[:, 1:] != BOE_ID).sum())
        return out


def eval_spans(data: bytes, total: int, chunks: int) -> list[bytes]:
    if total <= 0 or total >= len(data):
        return [data]
    chunks = max(1, min(chunks, total))
    size = total // chunks
    step = (len(data) - size) / max(1, chunks - 1) if chunks > 1 else 0
    return [data[int(i * step): int(i * step) + size] for i in range(chunks)]


def score(model: nn.Module, spans: list[bytes], window: int, batch_size: int, device: torch.device) -> dict:
    nll = n = 0.0
    patches = 0.0
    has_patches = False
    for s in spans:
        r = compute_bits_per_byte(model, s, window=window, batch_size=batch_size, device=device)
        nll += r["loss"] * r["bytes"]
        n += r["bytes"]
        if "mean_patch_size" in r:
            has_patches = True
            patches += r["bytes"] / r["mean_patch_size"]
    out = {"bits_per_byte": nll / n / math.log(2), "bytes": int(n)}
    if has_patches and patches:
        out["mean_patch_size"] = n / patches
    return out


def probe_step_seconds(model: nn.Module, batch: torch.Tensor, device: torch.device, amp: torch.dtype | None,
                       reps: int = 3) -> float:
    """Seconds per forward + backward on `batch` (after one warm-up); gradients are discarded."""
    model.train()
    batch = batch.to(device)
    times = []
    for i in range(reps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = model(batch)
        loss, _ = lm_loss(logits, batch)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - t)
    model.zero_grad(set_to_none=True)
    return sorted(times)[len(times) // 2]


def entropy_flops(model: BLT, context: int) -> float:
    """The entropy model's term of BLT.flops_per_byte."""
    c = model.config
    mat = sum(p.numel() for n, p in model.entropy_model.named_parameters()
              if p.dim() == 2 and "embed" not in n and "table" not in n)
    return float(2 * mat + 4.0 * c.entropy_model_layers * c.entropy_hidden_size * min(c.entropy_context_size, context))


@torch.inference_mode()
def baseline_generate(model: ByteTransformer, prompt: bytes, n: int, device: torch.device, seed: int) -> float:
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    cache = model.stack.new_cache(device)
    logits = model(torch.tensor([encode(prompt)], device=device), cache=cache)[0, -1]
    times = []
    for _ in range(n):
        logits[EOS_ID] = float("-inf")
        tok = sample(sampling_distribution(logits, 1.0, 0, 1.0), gen)
        times.append(time.perf_counter())
        logits = model(torch.tensor([[tok]], device=device), cache=cache)[0, -1]
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else math.nan


def blt_generate(model: BLT, prompt: bytes, n: int, seed: int) -> float:
    hook = model.decoder.head.register_forward_hook(_mask_eos)
    try:
        times = [time.perf_counter() for _ in generate_stream(model, prompt, max_new_bytes=n, temperature=1.0, seed=seed)]
    finally:
        hook.remove()
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else math.nan


@torch.no_grad()
def calibrate_monotonic(model: BLT, batches, target: float, max_batches: int) -> float:
    """theta_r giving about one patch start per `target` bytes under the monotonic rule."""
    model.entropy_model.eval()
    diffs = []
    device = next(model.parameters()).device
    for i, ids in enumerate(batches):
        if i >= max_batches:
            break
        ids = ids.to(device)
        h = model.entropy_model.entropies(ids).float()
        d = (h[:, 1:] - h[:, :-1])[:, :-1]  # H_t - H_t-1 decides whether position t + 1 starts a patch
        valid = ids[:, 2:] >= OFFSET  # ... where t + 1 is a real byte
        diffs.append(d[valid].cpu())
    return float(calibrate_threshold(torch.cat(diffs), target))


@dataclass
class Result:
    variant: str
    description: str
    params: int  # trained parameters, hash tables and entropy model excluded
    hash_params: int = 0
    entropy_model_params: int = 0
    bpb: dict[str, float] = field(default_factory=dict)
    mean_patch_size: float | None = None
    flops_per_byte: float = 0.0
    gen_bytes_per_s: float = 0.0
    train_bytes_per_s: float = 0.0
    train_bytes: int = 0
    steps: int = 0
    train_seconds: float = 0.0
    schedule_steps: int = 0
    config: dict | None = None
    notes: list[str] = field(default_factory=list)


# --- main -----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_TRAIN), help="training text (default ../shared/data/en_mix/train.txt)")
    p.add_argument("--valid", default=",".join(str(x) for x in DEFAULT_VALID),
                   help="comma-separated validation files (default en_mix/valid.txt,tinyshakespeare/valid.txt)")
    p.add_argument("--minutes", type=float, default=None, help="training budget per variant (default 4)")
    p.add_argument("--entropy-minutes", type=float, default=None, help="budget of the shared entropy model (default 3)")
    p.add_argument("--entropy-model", help="model directory whose entropy model to reuse (skips entropy training)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of: {', '.join(VARIANTS)}")
    p.add_argument("--seq-len", type=int, default=None, help="training sequence length in ids (default 512)")
    p.add_argument("--batch-size", type=int, default=None, help="training batch size (default 8)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate, every variant (default 1e-3)")
    p.add_argument("--warmup", type=int, default=100, help="warm-up steps, at most a tenth of the estimated steps")
    p.add_argument("--eval-bytes", type=int, default=None, help="bytes scored per validation file (default 60000; 0 = all)")
    p.add_argument("--eval-chunks", type=int, default=8, help="evenly spaced spans those bytes come from (default 8)")
    p.add_argument("--gen-prompt", type=int, default=None, help="prompt bytes for the generation timing (default 256)")
    p.add_argument("--gen-bytes", type=int, default=None, help="bytes generated for the timing (default 200)")
    p.add_argument("--baseline-width", type=int, default=256)
    p.add_argument("--baseline-heads", type=int, default=4)
    p.add_argument("--baseline-ffn", type=int, default=768)
    p.add_argument("--baseline-layers", type=int, default=0, help="0 = the depth whose parameter count is closest to the BLT's")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--out", default=str(REPO / "runs" / "patching_study"), help="where the trained entropy model is saved")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true", help="show the training library's progress bars")
    p.add_argument("--json", help="write the numbers to this JSON file")
    p.add_argument("--quick", action="store_true", help="smoke run: seconds of training on a slice of the data")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = dict(minutes=(0.05, 4.0), entropy_minutes=(0.05, 3.0), seq_len=(128, 512), batch_size=(4, 8),
                    eval_bytes=(2000, 60000), gen_prompt=(64, 256), gen_bytes=(16, 200))
    for name, (q, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, q if quick else full)
    if quick:
        args.eval_chunks = min(args.eval_chunks, 2)
    unknown = [v for v in args.variants.split(",") if v.strip() and v.strip() not in VARIANTS]
    if unknown:
        p.error(f"--variants: unknown {unknown[0]!r} (choose from {', '.join(VARIANTS)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    t_all = time.perf_counter()
    # the first AdamW imports torch._dynamo (seconds): do it now, not inside the first variant's timing
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])

    load = busy_warning(console)
    # --- data ---
    docs, stats = read_documents(args.data)
    if args.quick:
        docs = [d[:300_000] for d in docs][:1]
    valid_files = [Path(x) for x in args.valid.split(",") if x.strip()]
    valid_spans = {(f"{f.parent.name}/{f.name}" if f.parent.name else f.name):
                   eval_spans(f.read_bytes(), args.eval_bytes, args.eval_chunks) for f in valid_files}
    prompt = DEFAULT_VALID[0].read_bytes()[: args.gen_prompt] if DEFAULT_VALID[0].exists() else docs[0][: args.gen_prompt]
    train_ds = ByteDataset(docs, args.seq_len, 1, mode="train", seed=args.seed)
    calib_ds = ByteDataset(docs, args.seq_len, 1, mode="eval")
    console.print(f"[bold]train[/]: {stats.summary()}{' (quick: first 300,000 bytes)' if args.quick else ''}; "
                  f"{len(train_ds)} windows of {args.seq_len} ids per epoch")
    console.print(f"[bold]device[/]: {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")

    def loader():
        counter = CountingCollate()
        base = make_loader(train_ds, args.batch_size, train=True, seed=args.seed)
        return DataLoader(train_ds, batch_sampler=base.batch_sampler, collate_fn=counter), counter

    probe_batch = collate_batch([train_ds[i] for i in range(min(args.batch_size, len(train_ds)))])

    def training_config(budget_min: float, est_steps: int) -> TrainingConfig:
        return TrainingConfig(
            learning_rate=args.lr, warmup_steps=max(1, min(args.warmup, est_steps // 10)), max_sequence_length=args.seq_len,
            batch_size=args.batch_size, eval_batch_size=args.batch_size, patience=0, num_epochs=100_000,
            max_minutes=budget_min, schedule_steps=max(1, est_steps), eval_interval=10**9, log_interval=10**9,
            seed=args.seed, progress=args.progress)

    tiny = BLTConfig.preset("tiny")
    notes: list[str] = []

    # --- the shared entropy model ---
    need_entropy = any(VARIANTS[v][1] is not None and VARIANTS[v][1].get("patching_scheme", "entropy") == "entropy"
                       for v in variants)
    ent_src: BLT | None = None
    theta = theta_r = None
    entropy_row: Result | None = None
    if need_entropy or args.entropy_model:
        if args.entropy_model:
            ent_src = load_model(args.entropy_model, device=device)
            for name in ENTROPY_FIELDS:
                tiny = tiny.replace(**{name: getattr(ent_src.config, name)})
            notes.append(f"entropy model reused from {args.entropy_model}")
        else:
            torch.manual_seed(args.seed)
            ent_src = BLT(tiny).to(device)
            sec = probe_step_seconds(ent_src.entropy_model, probe_batch, device, amp)
            est = int(args.entropy_minutes * 60 / sec)
            dl, counter = loader()
            console.print(f"[bold]entropy model[/]: training {args.entropy_minutes:g} min (about {est} steps)")
            t0 = time.perf_counter()
            train_entropy_model(ent_src, dl, None, training_config(args.entropy_minutes, est))
            secs = time.perf_counter() - t0
            notes.append(f"entropy model trained here for {args.entropy_minutes:g} min ({counter.bytes:,} bytes), "
                         f"saved to {Path(args.out) / 'entropy_model'} (reuse with --entropy-model); its training "
                         "time is not counted in the entropy-patched variants' budgets")
            entropy_row = Result("(entropy model)", "the shared entropy model alone, as a byte LM (reference; "
                                 f"{args.entropy_minutes:g} min budget)",
                                 sum(p.numel() for p in ent_src.entropy_model.parameters()),
                                 train_bytes=counter.bytes, train_seconds=secs, train_bytes_per_s=counter.bytes / secs)
        ent_src.eval()
        calib = make_loader(calib_ds, args.batch_size, train=False, rank=0, world_size=1)
        theta = calibrate_entropy_threshold(ent_src, calib, TARGET_MEAN_PATCH, 16)
        theta_r = calibrate_monotonic(ent_src, calib, TARGET_MEAN_PATCH, 16)
        if not args.entropy_model:  # saved with its calibrated threshold, for --entropy-model next time
            save_model(ent_src, Path(args.out) / "entropy_model")
        notes.append(f"entropy threshold {theta:.4f} nats (global) and monotonic threshold {theta_r:.4f} nats, "
                     f"calibrated on the training data for a mean patch size of {TARGET_MEAN_PATCH}")
        if entropy_row is not None:
            em = ent_src.entropy_model
            entropy_row.bpb = {k: score(em, s, args.seq_len, args.batch_size, device)["bits_per_byte"]
                               for k, s in valid_spans.items()}
            entropy_row.flops_per_byte = entropy_flops(ent_src, args.seq_len)

    # --- the variants ---
    results: list[Result] = []
    ref_blt = BLT(tiny)
    target_params = blt_params(ref_blt)
    del ref_blt
    for name in variants:
        desc, changes = VARIANTS[name]
        torch.manual_seed(args.seed)
        if changes is None:
            model = pick_baseline(target_params, args.baseline_width, args.baseline_heads, args.baseline_ffn,
                                  args.baseline_layers).to(device)
            n_params = sum(p.numel() for p in model.parameters())
            res = Result(name, f"{desc}: width {model.dim}, {model.num_layers} layers, ffn {args.baseline_ffn}",
                         n_params)
            res.notes.append(f"{n_params:,} params vs the tiny BLT's {target_params:,} (hash tables and entropy model excluded)")
        else:
            cfg = tiny.replace(**changes)
            if cfg.default_patching().needs_entropies:
                cfg = cfg.replace(entropy_threshold=theta, monotonic_threshold=theta_r if cfg.use_monotonic else cfg.monotonic_threshold)
            model = BLT(cfg).to(device)
            if ent_src is not None:
                model.entropy_model.load_state_dict(ent_src.entropy_model.state_dict())
            model.freeze_entropy_model(True)
            b = model.parameter_breakdown()
            res = Result(name, desc, blt_params(model), hash_params=b["hash_embeddings"],
                         entropy_model_params=b["entropy_model"], config=cfg.to_dict())
        sec = probe_step_seconds(model, probe_batch, device, amp)
        est = max(1, int(args.minutes * 60 / sec))
        res.schedule_steps = est
        dl, counter = loader()
        steps = {"n": 0, "t": 0.0}

        def on_step(step: int, loss: float, steps=steps) -> None:
            steps["n"], steps["t"] = step, time.perf_counter()

        console.print(f"[bold]{name}[/]: {res.params:,} params, training {args.minutes:g} min (about {est} steps)")
        t0 = time.perf_counter()
        train_model(model, dl, None, training_config(args.minutes, est), on_step=on_step)
        res.steps = steps["n"]
        res.train_seconds = (steps["t"] or time.perf_counter()) - t0
        res.train_bytes = counter.bytes
        res.train_bytes_per_s = counter.bytes / res.train_seconds if res.train_seconds > 0 else math.nan
        model.eval()
        for k, spans in valid_spans.items():
            r = score(model, spans, args.seq_len, args.batch_size, device)
            res.bpb[k] = r["bits_per_byte"]
            if res.mean_patch_size is None and "mean_patch_size" in r:
                res.mean_patch_size = r["mean_patch_size"]
        if isinstance(model, ByteTransformer):
            res.mean_patch_size = 1.0
            res.flops_per_byte = model.flops_per_byte(args.seq_len)
            baseline_generate(model, prompt[:32], 4, device, args.seed)  # warm-up
            res.gen_bytes_per_s = baseline_generate(model, prompt, args.gen_bytes, device, args.seed)
        else:
            res.flops_per_byte = model.flops_per_byte(res.mean_patch_size or TARGET_MEAN_PATCH, context_bytes=args.seq_len)
            if not model.config.default_patching().needs_entropies:
                # BLT.flops_per_byte always counts the entropy model; fixed/space patching needs none
                res.flops_per_byte -= entropy_flops(model, args.seq_len)
            blt_generate(model, prompt[:32], 4, args.seed)  # warm-up
            res.gen_bytes_per_s = blt_generate(model, prompt, args.gen_bytes, args.seed)
        console.print(f"  {name}: " + ", ".join(f"{k} {v:.4f} bpb" for k, v in res.bpb.items())
                      + f"; patch {res.mean_patch_size or 0:.2f}; train {res.train_bytes_per_s:,.0f} B/s "
                        f"({res.steps} steps); gen {res.gen_bytes_per_s:,.0f} B/s")
        results.append(res)
        del model

    # --- table ---
    keys = list(valid_spans)
    winners = {k: min(results, key=lambda r: r.bpb[k]).variant for k in keys} if results else {}
    table = Table(title=f"Patching study: {args.minutes:g} min of training per variant on {Path(args.data).name} "
                        f"({device}, {torch.get_num_threads()} threads)")
    table.add_column("variant")
    table.add_column("params", justify="right")
    for k in keys:
        table.add_column(f"bpb {k}", justify="right")
    for col in ("patch", "FLOPs/B", "gen B/s", "train B/s", "steps"):
        table.add_column(col, justify="right")
    table.add_column("what")
    for r in results + ([entropy_row] if entropy_row else []):
        cells = []
        for k in keys:
            v = r.bpb.get(k)
            mark = " ★" if winners.get(k) == r.variant else ""
            cells.append("-" if v is None else f"{v:.4f}{mark}")
        table.add_row(r.variant, f"{r.params / 1e6:.2f}M", *cells,
                      "-" if r.mean_patch_size is None else f"{r.mean_patch_size:.2f}",
                      f"{r.flops_per_byte / 1e6:.2f}M" if r.flops_per_byte else "-",
                      f"{r.gen_bytes_per_s:,.0f}" if r.gen_bytes_per_s else "-",
                      f"{r.train_bytes_per_s:,.0f}", str(r.steps) if r.steps else "-", r.description)
    console.print(table)
    foot = [
        f"★ = lowest bits per byte in that column (the winner); bpb over {args.eval_bytes or 'all'} bytes per file "
        f"in {args.eval_chunks} evenly spaced spans, windows of {args.seq_len} ids, half-window context",
        "params: trained parameters, hash n-gram tables and the (frozen) entropy model excluded; "
        + (f"BLT hash tables {results[-1].hash_params:,}, entropy model {results[-1].entropy_model_params:,}"
           if results and results[-1].hash_params else ""),
        f"FLOPs/B: inference FLOPs per byte at a {args.seq_len}-byte context (BLT.flops_per_byte; the entropy model "
        "counted for entropy patching only, though the generation engine runs it for every scheme; "
        "the byte transformer by the global-stack formula with patch size 1)",
        f"gen B/s: cached generation, {args.gen_bytes} bytes after a {len(prompt)}-byte prompt, after the first byte; "
        "train B/s: scored training bytes per second of the budget",
        f"every variant: AdamW lr {args.lr:g}, cosine to 10% over its estimated steps, batch {args.batch_size} x "
        f"{args.seq_len}, seed {args.seed}, same data order",
        *notes,
    ]
    summary = []
    for k in keys:
        ranked = sorted(results, key=lambda r: r.bpb[k])
        best = ranked[0]
        base = next((r for r in results if r.variant == "byte-transformer"), None)
        line = f"winner on {k}: {best.variant} ({best.bpb[k]:.4f} bpb"
        if len(ranked) > 1:
            line += f", {ranked[1].bpb[k] - best.bpb[k]:.4f} ahead of {ranked[1].variant}"
        if base is not None and base is not best:
            line += f"; {base.bpb[k] - best.bpb[k]:+.4f} vs the byte transformer"
        elif base is best and len(ranked) > 1:
            line += "; BLT does not win at this budget"
        summary.append(line + ")")
    for s in summary:
        console.print(f"[bold]{s}[/]")
    for f_ in foot:
        console.print(f"[dim]- {f_}[/]")
    total = time.perf_counter() - t_all
    console.print(f"[dim]total wall time {total / 60:.1f} min[/]")

    if args.json:
        out = {
            "benchmark": "patching_study",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "settings": vars(args),
            "machine": {"load_average_at_start": load, "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
                        "cpu_count": os.cpu_count(), "platform": platform.platform(),
                        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None},
            "entropy_threshold": theta, "monotonic_threshold": theta_r,
            "results": [asdict(r) for r in results],
            "entropy_model": asdict(entropy_row) if entropy_row else None,
            "winners": winners, "summary": summary, "notes": foot, "wall_seconds": total,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, default=float) + "\n", encoding="utf-8")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
