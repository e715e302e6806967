"""Package a trained run as the shipped model and write its MODEL_CARD.md from measurements.

    python scripts/make_model_card.py --run runs/shipped_v2 --out assets/models/blt-tiny-en \
        --command "python scripts/train_shipped_model.py ..." --compare /path/to/blt-tiny \
        --study benchmarks/results/patching_study --sample-notes notes.md

Copies RUN/best in float16 with RUN/metrics.jsonl, scores bits per byte on en_broad/valid.txt,
tinyshakespeare/valid.txt and texts that are in no corpus here (Python standard-library modules,
the GPL-3 licence text), next to gzip -9, bzip2 -9 and xz -9e given the training text, samples
both models on the same prompts at two temperatures and writes MODEL_CARD.md and eval.json.
Every number in the card is computed here; --sample-notes is the human judgement of the samples.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sysconfig
import time
from pathlib import Path

import torch

from blt_model import BLT, load_model, save_model
from blt_model.inference.generation import generate_text
from blt_model.io.files import atomic_write_text
from blt_model.train.evaluation import compressor_bits_per_byte, compute_bits_per_byte

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SCORE_CACHE = REPO / "benchmarks" / "results" / "model_card_scores.json"
COMPRESSOR_CACHE = REPO / "benchmarks" / "results" / "compressors_given_en_broad_train.json"
STDLIB_SAMPLE = ["textwrap.py", "shlex.py", "fnmatch.py", "glob.py", "string.py", "bisect.py", "heapq.py",
                 "queue.py", "sched.py", "getopt.py", "netrc.py", "tabnanny.py"]
PROMPTS = ["The history of the", "def read_config(path):\n", "ROMEO:\n"]
TEMPERATURES = (0.7, 1.0)
# compressor_bits_per_byte's names (highest levels: gzip -9, bzip2 -9, xz -9e) as the card prints them
COMPRESSORS = {"gzip": "gzip -9", "bz2": "bzip2 -9", "lzma": "xz -9e"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def held_out_texts() -> dict[str, bytes]:
    """Texts in no corpus here: standard-library Python (en_broad holds third-party code only) and
    modern legal prose (en_broad has no GPL text)."""
    std = Path(sysconfig.get_paths()["stdlib"])
    py = b"".join(f"# ==== {m} ====\n".encode() + (std / m).read_bytes() for m in STDLIB_SAMPLE)
    out = {f"python{platform.python_version()} stdlib sample ({len(STDLIB_SAMPLE)} modules)": py}
    gpl = Path("/usr/share/common-licenses/GPL-3")
    if gpl.is_file():
        out["GPL-3 licence text"] = gpl.read_bytes()
    return out


def cached(cache: Path, key: str, compute) -> dict:
    """`compute()` once per key: figures kept in the JSON file `cache` across runs of the card
    (xz -9e of a 22 MB reference, or scoring 1.4 MB, takes minutes on 2 cores)."""
    got = json.loads(cache.read_text()) if cache.exists() else {}
    if key not in got:
        got[key] = compute()
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps(got, indent=1) + "\n")
    return got[key]


def compressors_given(reference: bytes, files: dict[str, bytes], cache: Path) -> dict[str, dict[str, float]]:
    """Bits per byte of each file for each compressor given `reference`: size(ref + file) - size(ref)."""
    def compute(data: bytes) -> dict[str, float]:
        bpb = compressor_bits_per_byte(data, reference)
        return {label: bpb[name] for name, label in COMPRESSORS.items()}

    rkey = sha256(reference)[:16]
    return {name: cached(cache, f"{rkey}:{sha256(data)[:16]}", lambda d=data: compute(d))
            for name, data in files.items()}


def score(model: BLT, weights: Path, files: dict[str, bytes], cache: Path) -> dict[str, dict]:
    """compute_bits_per_byte of every file, kept by the sha256 of the weights and of the file."""
    def compute(data: bytes) -> dict[str, float]:
        t = time.time()
        m = compute_bits_per_byte(model, data, batch_size=8)
        return {"bits_per_byte": m["bits_per_byte"], "mean_patch_size": m["mean_patch_size"],
                "accuracy": m["accuracy"], "seconds": time.time() - t}

    wkey = sha256(weights.read_bytes())[:16]
    return {name: cached(cache, f"{wkey}:{sha256(data)[:16]}", lambda d=data: compute(d))
            for name, data in files.items()}


def samples(model: BLT) -> dict[str, dict[str, str]]:
    return {p: {str(t): generate_text(model, p, max_new_bytes=300, temperature=t, top_k=0, seed=1)
                for t in TEMPERATURES} for p in PROMPTS}


def quality_section(files: dict[str, bytes], ours: dict, old: dict | None, comp: dict, old_name: str) -> list[str]:
    lines = ["## Quality (bits per byte, lower is better)", "",
             "`compute_bits_per_byte`: windows of the full context, each starting with BOS. Compressors at their "
             "highest levels, each given the training text (size of train + file minus size of train), the fair "
             "comparison for a model trained on it.", "",
             "| file | bytes | this model | " + (f"{old_name} | " if old else "") + " | ".join(COMPRESSORS.values()) + " | beats xz? |",
             "|---|---|---|" + ("---|" if old else "") + "---|" * len(COMPRESSORS) + "---|"]
    for name, data in files.items():
        b = ours[name]["bits_per_byte"]
        cells = [f"**{b:.3f}**"] + ([f"{old[name]['bits_per_byte']:.3f}"] if old else [])
        cells += [f"{comp[name][k]:.3f}" for k in COMPRESSORS.values()]
        verdict = "yes" if b < comp[name]["xz -9e"] else "**no**"
        lines.append(f"| {name} | {len(data):,} | " + " | ".join(cells) + f" | {verdict} |")
    lines.append("")
    return lines


def samples_section(ours: dict, old: dict | None, old_name: str, notes: str) -> list[str]:
    lines = ["## Samples", "", f"Seed 1, 300 bytes, no top-k; the same prompts for {old_name} (the model this one "
             "started from) where it is given.", ""]
    for prompt in PROMPTS:
        for t in TEMPERATURES:
            lines += [f"Prompt `{json.dumps(prompt)[1:-1]}`, temperature {t}, this model:", "", "```text",
                      prompt + ours[prompt][str(t)], "```", ""]
            if old:
                lines += [f"{old_name}, same prompt and temperature:", "", "```text", prompt + old[prompt][str(t)],
                          "```", ""]
    if notes:
        lines += ["### How good are they?", "", notes.strip(), ""]
    return lines


def model_section(m: BLT, size_mb: float, patch: float) -> list[str]:
    c, b = m.config, m.parameter_breakdown()
    lines = ["## The model", "", "| part | parameters |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {b[k]:,} |" for k in
              ("entropy_model", "hash_embeddings", "local_encoder", "global", "local_decoder", "total")]
    p = c.patching
    scheme = p.scheme + (" (monotonic)" if p.use_monotonic else "")
    threshold = f"{round(p.entropy_threshold, 4)} nats" if c.entropy_threshold_calibrated else "not calibrated"
    return lines + [
        "",
        f"- Patching: **{scheme}** (max patch size {p.max_patch_size}); entropy threshold "
        f"{threshold} for the "
        "entropy scheme, which the app's inspector and colours use whatever the scheme.",
        f"- Widths: local {c.hidden_size}, global {c.effective_global_hidden_size}; layers {c.encoder_layers}/{c.global_layers}/"
        f"{c.decoder_layers} (encoder/global/decoder); entropy model {c.entropy_model_layers} layers of "
        f"{c.entropy_hidden_size}; hash n-grams {c.ngram_sizes} with {c.ngram_vocab_size:,} rows each.",
        f"- Attention: {c.global_attention}; decoder memory M = {c.decoder_memory_patches}, gate "
        f"{'on' if c.decoder_gate else 'off'}; context {c.max_position_embeddings} bytes, local window {c.window_size}.",
        f"- Weights in float16 ({size_mb:.1f} MB on disk); the loader restores float32 on the CPU.",
        f"- Inference FLOPs per byte at the mean patch size on en_broad/valid.txt ({patch:.2f}): "
        f"{m.flops_per_byte(patch) / 1e6:.1f} M.", ""]


def training_section(run: Path, command: str, train: bytes, hardware: str, init: str) -> list[str]:
    rec = json.loads((run / "run.json").read_text())
    logs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = max((x["step"] for x in logs if x.get("stage") == "blt" and "step" in x), default=0)
    state = torch.load(run / "state.pt", map_location="cpu", weights_only=True)
    ent = run / "entropy" / "state.pt"
    ent_s = torch.load(ent, map_location="cpu", weights_only=True).get("elapsed_s", 0.0) if ent.exists() else 0.0
    a = rec["args"]
    return ["## How it was trained", "", "```bash", command, "```", "",
            f"- Started from {init} (trained from scratch on en_mix/train.txt, the first component of "
            "en_broad/train.txt, for 71 minutes; its card is in git history), then trained on "
            f"`{', '.join(Path(p).parent.name + '/' + Path(p).name for p in a['data'])}` "
            f"(sha256 `{sha256(train)}`, {len(train):,} bytes).",
            "- Checkpoint selection on a slice held out of the training file (the last 5% of every ~1 MB segment, "
            "so news, books, Wikipedia and code all count), never on a validation file: en_broad/valid.txt "
            "contains tinyshakespeare/valid.txt.",
            f"- This run: {ent_s / 60:.1f} min of entropy-model training, {state['elapsed_s'] / 60:.1f} min of BLT "
            f"training ({steps} steps of {a['batch_size']} x {a['seq_len']} bytes, peak learning rate {a['lr']:g}, "
            f"cosine decay to 10% over the {a['minutes']:g}-minute budget) on {hardware}.",
            "- The run's metrics log is `metrics.jsonl` beside this card.", ""]


def card_files() -> dict[str, bytes]:
    return {"en_broad/valid.txt": (DATA / "en_broad" / "valid.txt").read_bytes(),
            "tinyshakespeare/valid.txt": (DATA / "tinyshakespeare" / "valid.txt").read_bytes(),
            **held_out_texts()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", default="blt-tiny-en")
    ap.add_argument("--command", required=True)
    ap.add_argument("--compare", type=Path, help="an earlier model to score and sample beside this one")
    ap.add_argument("--init-label", default="blt-tiny", help="how the card names the model the run started from")
    ap.add_argument("--study", type=Path, help="folder of benchmarks/patching_study.py results")
    ap.add_argument("--sample-notes", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hardware", default=f"a 2-core {platform.machine()} CPU shared with other jobs, no GPU")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    save_model(load_model(a.run / "best"), a.out, dtype=torch.float16)
    shutil.copyfile(a.run / "metrics.jsonl", a.out / "metrics.jsonl")
    model = load_model(a.out)  # what users get
    train = (DATA / "en_broad" / "train.txt").read_bytes()
    files = card_files()
    ours = score(model, a.out / "model.safetensors", files, SCORE_CACHE)
    old_model = load_model(a.compare) if a.compare else None
    old = score(old_model, a.compare / "model.safetensors", files, SCORE_CACHE) if old_model else None
    comp = compressors_given(train, files, COMPRESSOR_CACHE)
    s_ours, s_old = samples(model), (samples(old_model) if old_model else None)
    size_mb = sum(p.stat().st_size for p in a.out.glob("model.safetensors")) / 1e6
    old_name = a.compare.name if a.compare else ""
    lines = [f"# {a.name}: the model shipped with blt-chat", "",
             "A small Byte Latent Transformer trained on a 2-core CPU on 22 MB of public-domain and openly licensed "
             "English (news, reviews, encyclopedia articles, science, history, essays, drama, stories) and Python. "
             "It exists so that a fresh install does something real offline; it is not an assistant. Written by "
             "`scripts/make_model_card.py`: every number below was measured by it.", ""]
    lines += training_section(a.run, a.command, train, a.hardware, a.init_label)
    lines += model_section(model, size_mb, ours["en_broad/valid.txt"]["mean_patch_size"])
    lines += quality_section(files, ours, old, comp, old_name)
    lines += ["Held-out texts: " + "; ".join(f"{k}: sha256 `{sha256(v)[:16]}...`" for k, v in files.items()), ""]
    if a.study:
        import subprocess
        import sys
        md = subprocess.run([sys.executable, str(REPO / "benchmarks" / "patching_study.py"), "--report",
                             "--markdown", "--results", str(a.study)], capture_output=True, text=True, check=True)
        lines += ["## The patching study", "", md.stdout.strip(), ""]
    lines += samples_section(s_ours, s_old, old_name, a.sample_notes.read_text() if a.sample_notes else "")
    lines += ["## Limits", "",
              "- About 8M parameters and a few hours of CPU: English-looking text with real words and mostly "
              "well-formed phrases, no facts, no answers, no instructions followed. It continues text; it "
              "has never seen a chat transcript.",
              "- English and Python only; other scripts are bytes it has rarely seen.",
              f"- Context of {model.config.max_position_embeddings} bytes; longer conversations are cut to "
              "their most recent half.", ""]
    (a.out / "MODEL_CARD.md").write_text("\n".join(lines))
    (a.out / "eval.json").write_text(json.dumps({"model": ours, "compare": old, "compressors_given_train": comp,
                                                 "samples": s_ours, "compare_samples": s_old}, indent=2) + "\n")
    print(f"wrote {a.out}/MODEL_CARD.md ({size_mb:.1f} MB weights)")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as e:  # a missing run, a bad model directory, an unreadable file
        raise SystemExit(f"make_model_card: {e}") from None
