"""Bad inputs and faults (issue 11): every case runs the `blt` command in its own process under a
memory limit (RLIMIT_AS = the address space in use after importing torch plus 2 GB) and a
timeout, and must end with a non-zero status, exactly one stderr line naming the file or the
parameter, no traceback, the files that existed before byte-identical, and no pickle payload run.

The cases run through `blt_runner.py` (torch imported once, one fork per command, two at a time);
`test_real_blt_script_*` runs a few of them through the installed `blt` script to show the two
agree. Training faults (kill -9 inside a save, Ctrl+C) use real `blt train` processes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import blt_model.cli.commands as cli
from blt_model import BLT, load_model, save_model
from blt_model.guards import available_memory, check_memory, terminal_safe
from blt_model.io.checkpoint import CheckpointError, meta_model, remove_temp_files
from tests.helpers import tiny_config

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("blt_runner.py")
BLT_SCRIPT = Path(sys.executable).with_name("blt")
SMALL = dict(decoder_layers=1, window_size=32, entropy_context_size=32, max_position_embeddings=256)
TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 20
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
MARKER = "PAYLOAD_RAN"


class _Payload:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickle_bomb(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(_Payload(marker)))


def _st_header(path: Path, shapes: dict[str, tuple[int, ...]], dtype: str = "F32", sparse: bool = True) -> None:
    """A safetensors file with these shapes whose data is a hole (sparse): a huge model in a few KB."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = math.prod(shape) * 4
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + offset)


def _hf_config(**changes) -> dict:
    local = dict(hidden_size=32, num_attention_heads=2, cross_attn_k=2, hidden_size_global=64, num_hidden_layers=1,
                 intermediate_size=48)
    cfg = dict(model_type="blt", encoder_config=dict(local), decoder_config=dict(local, num_hidden_layers=2),
               global_config=dict(hidden_size=64, num_attention_heads=2, num_hidden_layers=2, intermediate_size=80),
               patcher_config=dict(hidden_size=32, num_attention_heads=2, num_hidden_layers=2, intermediate_size=48),
               encoder_hash_byte_group_vocab=37, encoder_hash_byte_group_size=[3, 4, 5], cross_attn_k=2)
    for path, value in changes.items():
        *parents, last = path.split(".")
        d = cfg
        for p in parents:
            d = d[p]
        d[last] = value
    return cfg


def _hf_weights(d: Path, drop: int = 0, extra: bool = False, **changes) -> None:
    """A transformers directory whose (sparse) safetensors header holds what the config implies."""
    from blt_model.io.hf_config import hf_config_to_blt
    from blt_model.io.hf_weights import plan_weights as _plan

    raw = _hf_config(**changes)
    m = _hf_dir(d, raw)
    shapes = {(k if k == "lm_head.weight" else "model." + k): shape
              for _, sources, _ in _plan(raw, hf_config_to_blt(raw), "config.json").items for k, shape in sources}
    names = sorted(shapes)[drop:]
    if extra:
        names.append("model.bogus.weight")
        shapes["model.bogus.weight"] = (3,)
    _st_header(m / "model.safetensors", {n: shapes[n] for n in names})


def _hf_dir(d: Path, config: dict, weight_map: dict[str, str] | None = None) -> Path:
    m = d / "hf"
    m.mkdir()
    (m / "config.json").write_text(json.dumps(config))
    if weight_map is not None:
        (m / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return m


@dataclass
class Case:
    name: str
    argv: list[str]
    needle: str | list[str]  # in the one stderr line (every item, when a list)
    setup: Callable[[Path], None] | None = None
    status: int = cli.EXIT_BAD_INPUT
    argv_bytes: list[bytes] = field(default_factory=list)
    fsize: int | None = None
    timeout: float = 90.0


def _cfg(d: Path, **changes) -> None:
    """The copied model's config.json with these fields changed."""
    p = d / "model" / "config.json"
    p.write_text(json.dumps({**json.loads(p.read_text()), **changes}))


def _replace(rel: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        p = d / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif os.path.lexists(p):
            p.unlink()
        make(p)
    return setup


def _weights_without_one(d: Path) -> None:
    from safetensors.torch import load_file, save_file

    p = d / "model" / "model.safetensors"
    state = load_file(str(p))
    state.pop(sorted(state)[0])
    save_file(state, str(p))


def _weights_with_extra(d: Path) -> None:
    from safetensors.torch import load_file, save_file

    p = d / "model" / "model.safetensors"
    state = load_file(str(p))
    state["extra.weight"] = torch.zeros(3)
    save_file(state, str(p))


def _huge_but_consistent(d: Path) -> None:
    """Config and header agree on ~7.7 GB of float32 weights; the file is a sparse hole."""
    cfg = tiny_config(**SMALL, ngram_vocab_size=10_000_000)
    shutil.rmtree(d / "model")
    (d / "model").mkdir()
    (d / "model" / "config.json").write_text(cfg.to_json())
    _st_header(d / "model" / "model.safetensors", {n: tuple(t.shape) for n, t in meta_model(cfg).state_dict().items()})


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _link(target: str) -> Callable[[Path], None]:
    return lambda p: p.symlink_to(target)


def _fake_run(d: Path) -> None:
    """An existing run: best/ and last/ models, run.json, metrics.jsonl."""
    run = d / "run"
    shutil.copytree(d / "model", run / "best")
    shutil.copytree(d / "model", run / "last")
    (run / "run.json").write_text(json.dumps({"model": tiny_config(**SMALL).to_dict(), "training": {}}))
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 3.0}\n')
    _data_and_config(d)


def _data_and_config(d: Path) -> None:
    (d / "train.txt").write_text(TEXT)
    (d / "tiny.json").write_text(json.dumps({"model": tiny_config(**SMALL).to_dict()}))


def _run_with_pickled_state(d: Path) -> None:
    _fake_run(d)
    (d / "run" / "entropy").mkdir()
    _pickle_bomb(d / "run" / "entropy" / "state.pt", d / MARKER)


def _resumable_run(d: Path) -> None:
    (d / "run").mkdir()
    (d / "run" / "run.json").write_text(json.dumps({"model": tiny_config(**SMALL).to_dict(), "training": {}}))
    _data_and_config(d)


def _nan_model(d: Path) -> None:
    model = load_model(d / "model")
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.fill_(float("nan"))
    save_model(model, d / "model")


def _shard_files(d: Path) -> None:
    (d / "elsewhere").mkdir()
    os.mkfifo(d / "elsewhere" / "model.safetensors")  # opening it would hang: proves it is never opened


TRAIN = ["train", "--data", "{d}/train.txt", "--config", "{d}/tiny.json", "--out", "{d}/run", "--max-steps", "2",
         "--entropy-steps", "1", "--seq-len", "64", "--batch-size", "2", "--no-progress"]
MODEL = ["--model", "{d}/model"]
GEN = ["generate", *MODEL, "hi", "--max-bytes", "4"]
EVAL = ["eval", *MODEL, "{d}/text.txt"]
HF_INDEX = "model.safetensors.index.json"

CASES = [
    # --- config.json and weight files that are not regular files, or too big ---
    Case("config_link_to_dev_zero", ["info", *MODEL], ["config.json", "device"],
         _replace("model/config.json", _link("/dev/zero"))),
    Case("config_fifo", ["info", *MODEL], ["config.json", "FIFO"], _replace("model/config.json", _fifo)),
    Case("config_directory", ["info", *MODEL], ["config.json", "directory"],
         _replace("model/config.json", lambda p: p.mkdir())),
    Case("config_oversized", ["info", *MODEL], ["config.json", "larger than"],
         _replace("model/config.json", lambda p: p.write_bytes(b"{" + b" " * (5 << 20) + b"}"))),
    Case("weights_fifo", ["info", *MODEL], ["model.safetensors", "FIFO"], _replace("model/model.safetensors", _fifo)),
    Case("weights_directory", ["info", *MODEL], ["model.safetensors", "directory"],
         _replace("model/model.safetensors", lambda p: p.mkdir())),
    Case("weights_link_to_dev_zero", ["generate", *MODEL, "x"], ["model.safetensors", "device"],
         _replace("model/model.safetensors", _link("/dev/zero"))),
    # --- config.json content ---
    Case("hidden_size_1e9", ["info", *MODEL], ["model.safetensors", "too large"],
         lambda d: _cfg(d, hidden_size=1_000_000_000, num_heads=2)),
    Case("hidden_size_mismatch", ["info", *MODEL], ["model.safetensors", "the config implies 308,419,104 parameters, the file holds"],
         lambda d: _cfg(d, hidden_size=4096, num_heads=2)),
    Case("ngram_vocab_5e6", ["info", *MODEL], ["model.safetensors", "hash_embed"],
         lambda d: _cfg(d, ngram_vocab_size=5_000_000)),
    Case("layers_1e9", ["info", *MODEL], ["config.json", "global_layers", "<= 4096"],
         lambda d: _cfg(d, global_layers=1_000_000_000)),
    Case("layers_beyond_the_weights", ["info", *MODEL], ["model.safetensors", "implies 4,0", "tensors"],
         lambda d: _cfg(d, global_layers=4000)),
    Case("encoder_layers_true", ["info", *MODEL], ["config.json", "encoder_layers"],
         lambda d: _cfg(d, encoder_layers=True)),
    Case("config_not_json", ["info", *MODEL], ["config.json", "JSON"],
         _replace("model/config.json", lambda p: p.write_text("{nope"))),
    Case("config_a_list", ["eval", *MODEL, "{d}/text.txt"], ["config.json", "object"],
         _replace("model/config.json", lambda p: p.write_text("[1, 2]"))),
    Case("config_unknown_field", ["info", *MODEL], ["config.json", "unknown field"],
         lambda d: _cfg(d, hidden_sise=3)),
    Case("config_not_utf8", ["info", *MODEL], ["config.json", "UTF-8"],
         _replace("model/config.json", lambda p: p.write_bytes(b'{"hidden_size": "\xff"}'))),
    Case("config_nested_deeply", ["info", *MODEL], ["config.json"],
         _replace("model/config.json", lambda p: p.write_text("[" * 200_000 + "]" * 200_000))),
    Case("config_nan_field", ["info", *MODEL], ["config.json", "rope_theta"],
         _replace("model/config.json", lambda p: p.write_text(p.with_name("config.json.orig").read_text()
                                                              .replace('"rope_theta": 10000.0', '"rope_theta": NaN')))),
    # --- safetensors files ---
    Case("weights_truncated", ["info", *MODEL], ["model.safetensors", "truncated"],
         lambda d: os.truncate(d / "model" / "model.safetensors", 1000)),
    Case("weights_garbage", ["info", *MODEL], ["model.safetensors", "corrupt"],
         _replace("model/model.safetensors", lambda p: p.write_bytes(os.urandom(4096)))),
    Case("weights_header_claims_2_64", ["info", *MODEL], ["model.safetensors", "header length"],
         _replace("model/model.safetensors", lambda p: p.write_bytes(b"\xff" * 8 + b"{}"))),
    Case("weights_missing_tensor", ["info", *MODEL], ["model.safetensors", "missing tensor"], _weights_without_one),
    Case("weights_extra_tensor", ["info", *MODEL], ["model.safetensors", "unexpected tensor 'extra.weight'"],
         _weights_with_extra),
    Case("weights_are_a_pickle", ["generate", *MODEL, "x"], ["model.safetensors", "corrupt"],
         _replace("model/model.safetensors", lambda p: _pickle_bomb(p, p.parents[1] / MARKER))),
    Case("only_pytorch_model_bin", ["info", *MODEL], ["model", "missing model.safetensors"],
         lambda d: (os.unlink(d / "model" / "model.safetensors"),
                    _pickle_bomb(d / "model" / "pytorch_model.bin", d / MARKER))),
    Case("needs_more_memory_than_available", ["info", *MODEL], ["model", "needs", "memory", "available"],
         _huge_but_consistent),
    Case("nan_weights_generate", GEN, ["model", "non-finite"], _nan_model, status=cli.EXIT_FAILURE),
    Case("nan_weights_eval", EVAL, ["model", "non-finite"], _nan_model, status=cli.EXIT_FAILURE),
    # --- transformers directories and shard indexes ---
    Case("hf_zero_heads", ["info", "--model", "{d}/hf"], ["config.json", "num_attention_heads"],
         lambda d: _hf_dir(d, _hf_config(**{"encoder_config.num_attention_heads": 0}))),
    Case("hf_hidden_size_big", ["info", "--model", "{d}/hf"], ["config.json", "hidden_size", "'big'"],
         lambda d: _hf_dir(d, _hf_config(**{"global_config.hidden_size": "big"}))),
    Case("hf_pickle_only", ["info", "--model", "{d}/hf"], ["pickle"],
         lambda d: _pickle_bomb(_hf_dir(d, _hf_config()) / "pytorch_model.bin", d / MARKER)),
    Case("shard_dotdot", ["info", "--model", "{d}/hf"], [HF_INDEX, "plain file name"],
         lambda d: (_shard_files(d), _hf_dir(d, _hf_config(), {"a": "../elsewhere/model.safetensors"}))),
    Case("shard_absolute", ["info", "--model", "{d}/hf"], [HF_INDEX, "/etc/passwd"],
         lambda d: _hf_dir(d, _hf_config(), {"a": "/etc/passwd"})),
    Case("shard_link_leaves_dir", ["info", "--model", "{d}/hf"], [HF_INDEX, "leaves"],
         lambda d: (_shard_files(d), (_hf_dir(d, _hf_config(), {"a": "s.safetensors"}) / "s.safetensors")
                    .symlink_to(d / "elsewhere" / "model.safetensors"))),
    Case("shard_name_escape_sequences", ["info", "--model", "{d}/hf"], [HF_INDEX, "\\x1b]0;pwned"],
         lambda d: _hf_dir(d, _hf_config(), {"a": "\x1b]0;pwned\x07\x1b[2J.safetensors"})),
    Case("hf_extra_tensor", ["info", "--model", "{d}/hf"], ["model.safetensors", "'model.bogus.weight'", "not part"],
         lambda d: _hf_weights(d, extra=True)),
    Case("hf_missing_tensor", ["info", "--model", "{d}/hf"], ["hf", "missing tensor"], lambda d: _hf_weights(d, drop=1)),
    Case("hf_needs_more_memory_than_available", ["info", "--model", "{d}/hf"], ["hf", "needs", "memory"],
         lambda d: _hf_weights(d, encoder_hash_byte_group_vocab=20_000_000)),
    Case("index_fifo", ["info", "--model", "{d}/hf"], [HF_INDEX, "FIFO"],
         lambda d: os.mkfifo(_hf_dir(d, _hf_config()) / HF_INDEX)),
    # --- output directories that hold a run ---
    Case("train_over_existing_run", TRAIN, ["run", "--resume", "--overwrite"], _fake_run),
    Case("train_resume_pickled_state", [*TRAIN, "--resume"], ["state.pt"], _run_with_pickled_state),
    Case("train_resume_disk_full", [*TRAIN, "--resume"], ["cannot write"], _resumable_run,
         status=cli.EXIT_FAILURE, fsize=20_000),
    Case("convert_disk_full", ["convert", "{d}/model", "{d}/out"], ["out", "cannot write"],
         status=cli.EXIT_FAILURE, fsize=20_000),
    Case("convert_over_model", ["convert", "{d}/model", "{d}/other"], ["other", "--overwrite"],
         lambda d: shutil.copytree(d / "model", d / "other")),
    # --- data files ---
    Case("train_data_fifo", TRAIN, ["train.txt", "FIFO"],
         lambda d: (_fake_run(d), shutil.rmtree(d / "run"), os.unlink(d / "train.txt"), os.mkfifo(d / "train.txt"))),
    Case("train_data_dev_zero", TRAIN, ["train.txt", "device"],
         lambda d: (_fake_run(d), shutil.rmtree(d / "run"), os.unlink(d / "train.txt"),
                    (d / "train.txt").symlink_to("/dev/zero"))),
    Case("eval_file_fifo", EVAL, ["text.txt", "FIFO"], _replace("text.txt", _fifo)),
    Case("eval_file_empty", EVAL, ["text.txt", "empty"], _replace("text.txt", lambda p: p.write_bytes(b""))),
    Case("train_config_bool_layers", TRAIN, ["tiny.json", "encoder_layers"],
         lambda d: (_fake_run(d), shutil.rmtree(d / "run"),
                    (d / "tiny.json").write_text(json.dumps({"model": {"encoder_layers": True}})))),
    Case("train_config_string_lr", TRAIN, ["tiny.json", "learning_rate"],
         lambda d: (_fake_run(d), shutil.rmtree(d / "run"),
                    (d / "tiny.json").write_text(json.dumps({"training": {"learning_rate": "fast"}})))),
    Case("train_config_needs_too_much_memory", TRAIN, ["model config", "1,920,119,872 parameters", "memory"],
         lambda d: (_fake_run(d), shutil.rmtree(d / "run"), (d / "tiny.json").write_text(json.dumps(
             {"model": tiny_config(**SMALL, ngram_vocab_size=10_000_000).to_dict()})))),
    Case("info_config_too_large_to_exist", ["info", "--config", "{d}/big.json"], ["big.json", "too large"],
         lambda d: (d / "big.json").write_text(json.dumps({"hidden_size": 10**9, "num_heads": 2}))),
    # --- numbers on the command line ---
    Case("temperature_nan", [*GEN, "--temperature", "nan"], ["--temperature", "nan"]),
    Case("temperature_inf", [*GEN, "--temperature", "inf"], ["--temperature", "inf"]),
    Case("repetition_penalty_nan", [*GEN, "--repetition-penalty", "nan"], ["--repetition-penalty"]),
    Case("top_p_zero", [*GEN, "--top-p", "0"], ["--top-p"]),
    Case("top_k_negative", [*GEN, "--top-k", "-1"], ["--top-k"]),
    Case("max_bytes_negative", [*GEN, "--max-bytes", "-5"], ["--max-bytes"]),
    Case("seed_beyond_64_bits", [*GEN, "--seed", str(2**70)], ["--seed", "<= 18446744073709551615"]),
    Case("eval_batch_size_zero", [*EVAL, "--batch-size", "0"], ["--batch-size", ">= 1"]),
    Case("eval_window_one", [*EVAL, "--window", "1"], ["--window"]),
    Case("info_patch_size_negative", ["info", "--preset", "tiny", "--patch-size", "-1"], ["--patch-size"]),
    Case("train_lr_nan", [*TRAIN, "--lr", "nan"], ["--lr"]),
    Case("train_seed_negative", [*TRAIN, "--seed", "-1"], ["--seed"]),
    Case("train_resume_and_overwrite", [*TRAIN, "--resume", "--overwrite"], ["--overwrite", "--resume"]),
    Case("unknown_option", ["generate", "--bogus"], ["--bogus"]),
    Case("no_command", [], ["COMMAND"]),
    # a prompt that is not UTF-8 is fine; the bad number after it is what fails, after nothing was printed
    Case("invalid_utf8_prompt_bad_number", ["generate", *MODEL, "--top-p", "2"], ["--top-p"],
         argv_bytes=[b"\xff\xfe caf\xc3"]),
]


def _snapshot(root: Path) -> dict[str, str]:
    """Path -> content hash of every regular file (links by target, other files by kind)."""
    out = {}
    for dirpath, dirnames, names in os.walk(root):
        for n in names + [x for x in dirnames if os.path.islink(os.path.join(dirpath, x))]:
            p = Path(dirpath) / n
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.readlink(p)
            elif stat.S_ISREG(st.st_mode) and st.st_size > 64 << 20:  # the sparse "huge model": no 7 GB read
                with open(p, "rb") as f:
                    out[rel] = f"{st.st_size}:{st.st_mtime_ns}:{hashlib.sha256(f.read(1 << 20)).hexdigest()}"
            elif stat.S_ISREG(st.st_mode):
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = f"mode:{stat.S_IFMT(st.st_mode)}"
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Build every case in its own directory, run them all, return name -> (case, dir, result)."""
    base = tmp_path_factory.mktemp("bad_inputs")
    torch.manual_seed(0)
    model = BLT(tiny_config(**SMALL)).eval()
    save_model(model, base / "_model")
    (base / "_model" / "config.json.orig").write_text((base / "_model" / "config.json").read_text())
    jobs, built = [], {}
    for case in CASES:
        d = base / case.name
        shutil.copytree(base / "_model", d / "model")
        (d / "text.txt").write_text(TEXT)
        if case.setup is not None:
            case.setup(d)
        before = _snapshot(d)
        jobs.append({"argv": [a.replace("{d}", str(d)) for a in case.argv],
                     "argv_hex": [b.hex() for b in case.argv_bytes], "cwd": str(d),
                     "out": str(base / f"{case.name}.out"), "err": str(base / f"{case.name}.err"),
                     "timeout": case.timeout, "fsize": case.fsize})
        built[case.name] = (case, d, before)
    proc = subprocess.run([sys.executable, str(RUNNER)], input=json.dumps({"jobs": jobs, "parallel": 2}),
                          capture_output=True, text=True, env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reply = json.loads(proc.stdout)
    out = {}
    for (name, (case, d, before)), res in zip(built.items(), reply["results"]):
        res["stderr"] = (base / f"{name}.err").read_bytes().decode("utf-8", "replace")
        res["stdout"] = (base / f"{name}.out").read_bytes()
        res["rlimit_as"] = reply["rlimit_as"]
        out[name] = (case, d, before, res)
    return out


def test_at_least_40_cases():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_bad_input_fails_cleanly(results, name):
    case, d, before, res = results[name]
    err = res["stderr"]
    assert not res["timed_out"], f"{name}: timed out (a hang); stderr: {err[-500:]}"
    assert res["status"] == case.status, f"{name}: status {res['status']}, stderr: {err[-2000:]}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"{name}: expected one stderr line, got {lines}"
    for needle in [case.needle] if isinstance(case.needle, str) else case.needle:
        assert needle in lines[0], f"{name}: {needle!r} not in {lines[0]!r}"
    assert "\x1b" not in err and "\x07" not in err  # nothing reaches the terminal raw
    after = _snapshot(d)
    changed = [p for p in before if after.get(p) != before[p]]
    assert not changed, f"{name}: files changed: {changed}"
    assert not list(d.rglob("*.tmp")), f"{name}: temporary files left"
    assert not (d / MARKER).exists() and not (d.parent / MARKER).exists(), "a pickle payload ran"
    assert res["stdout"] == b"" or name == "no_command"


def test_memory_limit_is_torch_plus_2gb(results):
    *_, res = results["needs_more_memory_than_available"]
    assert "RLIMIT_AS" in res["stderr"]  # the limit the runner set is the one that refused it


# --- the real `blt` script agrees with the runner --------------------------------------------------

def _limited() -> None:
    import re as _re

    vm = int(_re.search(r"VmSize:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (4 << 30),) * 2)  # python + torch import on top


def _blt(args: list[str | bytes], timeout: float = 120, env: dict[str, str] | None = None,
         **kw) -> subprocess.CompletedProcess:
    cmd = [str(BLT_SCRIPT)] if BLT_SCRIPT.exists() else [sys.executable, "-m", "blt_model.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, timeout=timeout, env=env or ENV, **kw)


def test_real_blt_script_fifo_and_bad_number(tmp_path):
    m = tmp_path / "m"
    save_model(BLT(tiny_config(**SMALL)), m)
    (m / "config.json").unlink()
    os.mkfifo(m / "config.json")
    r = _blt(["info", "--model", str(m)], preexec_fn=_limited)
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    assert r.stderr.decode().count("\n") == 1 and "config.json" in r.stderr.decode()
    r = _blt(["generate", "--temperature", "nan", "x"])
    assert r.returncode == 2 and r.stderr.decode().count("\n") == 1 and "--temperature" in r.stderr.decode()


def test_generate_keeps_prompt_bytes_and_ends_quietly_in_a_closed_pipe(tmp_path):
    m = tmp_path / "m"
    torch.manual_seed(0)
    save_model(BLT(tiny_config(**SMALL)), m)
    prompt = b"\xff\xfe caf\xc3 ok"
    r = _blt(["generate", "--model", str(m), "--max-bytes", "3", "--seed", "1", prompt])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(prompt)  # exactly the bytes given, invalid UTF-8 included
    cmd = [str(BLT_SCRIPT)] if BLT_SCRIPT.exists() else [sys.executable, "-m", "blt_model.cli"]
    p = subprocess.Popen([*cmd, "generate", "--model", str(m), "--max-bytes", "100000", "x"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    p.stdout.read(1)  # `| head -c 1`: read, then go away
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 0
    assert err == b"", err


# --- training faults ----------------------------------------------------------------------------

def _train_cmd(d: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(d / "train.txt"), "--config", str(d / "tiny.json"), "--out", str(d / "run"),
            "--max-steps", "6", "--entropy-steps", "2", "--eval-interval", "2", "--seq-len", "64",
            "--batch-size", "2", "--seed", "1", "--no-progress", *extra]


def _setup_training(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "train.txt").write_text(TEXT * 3)
    (d / "tiny.json").write_text(json.dumps({"model": tiny_config(**SMALL).to_dict(),
                                             "training": {"eval_max_batches": 2, "warmup_steps": 1}}))


def _complete_dirs_load(run: Path) -> None:
    for sub in ("best", "last", "entropy/best", "entropy/last"):
        if (run / sub / "config.json").exists():
            load_model(run / sub)  # raises if a kill left it unloadable


# the Nth time each point is passed lands inside stage 2 (the BLT), after best/ exists
FAULTS = ["after_tmp_written:16", "before_rename:15", "between_weights_and_config:7", "between_weights_and_state:4"]


def _kill_and_resume(d: Path, fault: str) -> tuple[subprocess.CompletedProcess, list[Path], subprocess.CompletedProcess]:
    _setup_training(d)
    killed = _blt(_train_cmd(d), env={**ENV, "BLT_FAULT_POINT": fault})
    _complete_dirs_load(d / "run")
    left = list((d / "run").rglob("*.tmp"))
    resumed = _blt(_train_cmd(d, "--resume"))
    return killed, left, resumed


def test_kill_inside_a_save_then_resume(tmp_path):
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda f: _kill_and_resume(tmp_path / f.split(":")[0], f), FAULTS))
    for fault, (killed, left, resumed) in zip(FAULTS, outcomes):
        run = tmp_path / fault.split(":")[0] / "run"
        assert killed.returncode == -signal.SIGKILL, (fault, killed.returncode, killed.stderr[-2000:])
        if fault.startswith(("after_tmp", "before_rename")):
            assert left, f"{fault}: the kill should have left a temporary file"
        assert resumed.returncode == 0, (fault, resumed.stderr[-2000:])
        assert not list(run.rglob("*.tmp")), f"{fault}: temporary files remain after the resume"
        for sub in ("best", "last"):
            load_model(run / sub)
        steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"step"' in x]
        assert max(steps) == 6


def test_ctrl_c_saves_last_and_exits_130(tmp_path):
    _setup_training(tmp_path)
    cmd = [str(BLT_SCRIPT)] if BLT_SCRIPT.exists() else [sys.executable, "-m", "blt_model.cli"]
    args = _train_cmd(tmp_path)
    args[args.index("--max-steps") + 1] = "100000"
    p = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    state = tmp_path / "run" / "state.pt"  # stage 2 has saved once: the run is well under way
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.1)
    mtime = state.stat().st_mtime_ns
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "last/" in lines[0], lines
    load_model(tmp_path / "run" / "last")
    assert state.stat().st_mtime_ns > mtime  # the resume state was saved on the way out
    assert not list((tmp_path / "run").rglob("*.tmp"))


# --- in-process: output directories, small data, help -----------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("trained")
    _setup_training(d)
    args = _train_cmd(d)
    args[args.index("--max-steps") + 1] = "2"
    assert cli.main(args) == 0
    return d


def test_train_refuses_an_existing_run_and_overwrite_moves_it_aside(trained, tmp_path, capsys):
    d = tmp_path / "w"
    shutil.copytree(trained, d)
    before = _snapshot(d / "run")
    args = _train_cmd(d)
    args[args.index("--max-steps") + 1] = "2"
    assert cli.main(args) == cli.EXIT_BAD_INPUT
    assert _snapshot(d / "run") == before  # best/ and metrics.jsonl untouched
    capsys.readouterr()
    assert cli.main([*args, "--overwrite"]) == 0
    moved = [p for p in d.iterdir() if re.fullmatch(r"run\.old-\d{8}-\d{6}(-\d+)?", p.name)]
    assert len(moved) == 1 and _snapshot(moved[0]) == before  # moved whole, nothing deleted
    assert "moved to" in " ".join(capsys.readouterr().out.split())
    # the same run again: a fresh log as long as the old one, not appended to it
    assert len((d / "run" / "metrics.jsonl").read_text().splitlines()) == len(
        (moved[0] / "metrics.jsonl").read_text().splitlines())


def test_convert_overwrite_moves_the_old_destination_aside(tmp_path, capsys):
    save_model(BLT(tiny_config(**SMALL)), tmp_path / "src")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "notes.txt").write_text("keep me")
    assert cli.main(["convert", str(tmp_path / "src"), str(tmp_path / "dst")]) == cli.EXIT_BAD_INPUT
    assert cli.main(["convert", str(tmp_path / "src"), str(tmp_path / "dst"), "--overwrite"]) == 0
    old = [p for p in tmp_path.iterdir() if p.name.startswith("dst.old-")]
    assert len(old) == 1 and (old[0] / "notes.txt").read_text() == "keep me"
    load_model(tmp_path / "dst")


def test_resume_removes_leftover_temporary_files(trained, tmp_path):
    d = tmp_path / "w"
    shutil.copytree(trained, d)
    junk = [d / "run" / "best" / ".model.safetensors.abc123.tmp", d / "run" / ".state.pt.xyz.tmp",
            d / "run" / "entropy" / "last" / ".config.json.q.tmp"]
    for j in junk:
        j.write_bytes(b"x" * 1000)
    keep = d / "run" / "notes.tmp"  # not a name our saves use: left alone
    keep.write_text("mine")
    args = _train_cmd(d, "--resume")
    args[args.index("--max-steps") + 1] = "3"
    assert cli.main(args) == 0
    assert not any(j.exists() for j in junk) and keep.exists()


def test_small_file_trains_and_says_how_little_data(tmp_path, capsys):
    d = tmp_path
    (d / "small.txt").write_bytes((TEXT * 3)[:4096].encode())
    # the default 511-byte windows in batches of 16: a 4 KB file has 8 windows, not one batch
    (d / "tiny.json").write_text(json.dumps({"model": tiny_config(**{**SMALL, "max_position_embeddings": 512}).to_dict(),
                                             "training": {"eval_max_batches": 1}}))
    rc = cli.main(["train", "--data", str(d / "small.txt"), "--config", str(d / "tiny.json"), "--out",
                   str(d / "run"), "--max-steps", "2", "--entropy-steps", "1", "--no-progress"])
    out = " ".join(capsys.readouterr().out.split())
    assert rc == 0
    assert "small data" in out and "training bytes" in out
    load_model(d / "run" / "best")


def test_info_describes_a_huge_config_without_allocating_it(tmp_path, capsys):
    (tmp_path / "big.json").write_text(json.dumps(tiny_config(**SMALL, ngram_vocab_size=10_000_000).to_dict()))
    assert cli.main(["info", "--config", str(tmp_path / "big.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"]["total"] == 1_920_119_872


def test_help_documents_exit_statuses(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("0 success", "1 runtime failure", "2 bad input", "130 interrupted", "--debug"):
        assert text in out


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert cli.main(["--debug", "info", "--model", str(tmp_path / "none")]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("blt info: error:")


# --- library guards -----------------------------------------------------------------------------

def test_terminal_safe():
    assert terminal_safe("a\x1b[2Jb\x07\x9b\x7f\tc\nd") == "a\\x1b[2Jb\\x07\\x9b\\x7f\tc\\x0ad"
    assert terminal_safe("x\ny", keep_newlines=True) == "x\ny"
    assert terminal_safe("caf\udcc3") == "caf\\xc3" and terminal_safe("héllo") == "héllo"


def test_check_memory_names_size_and_limit():
    have, limit = available_memory()
    assert have > 0 and limit
    with pytest.raises(CheckpointError, match=r"needs .* TB of memory.*available"):
        check_memory(10**15, "thing", CheckpointError)


def test_remove_temp_files_only_removes_save_leftovers(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ".model.safetensors.k2.tmp").write_bytes(b"12345")
    (tmp_path / "other.tmp").write_bytes(b"1")
    assert remove_temp_files(tmp_path) == (1, 5)
    assert (tmp_path / "other.tmp").exists()


def test_sampling_and_eval_parameters_are_validated_where_they_enter():
    from blt_model.inference.generation import generate_stream
    from blt_model.inference.sampling import NonFiniteLogitsError, sampling_distribution
    from blt_model.train.evaluation import compute_bits_per_byte, sliding_windows

    model = BLT(tiny_config(**SMALL)).eval()
    for kwargs, name in [(dict(temperature=float("nan")), "temperature"), (dict(temperature=float("inf")), "temperature"),
                         (dict(repetition_penalty=float("nan")), "repetition_penalty"),
                         (dict(top_p=float("nan")), "top_p"), (dict(top_k=1.5), "top_k"),
                         (dict(seed=2**64), "seed"), (dict(max_new_bytes=-1), "max_new_bytes")]:
        with pytest.raises(ValueError, match=name):
            next(generate_stream(model, "x", **kwargs))
    with pytest.raises(ValueError, match="batch_size"):
        compute_bits_per_byte(model, b"abc", batch_size=0)
    with pytest.raises(ValueError, match="window"):
        sliding_windows(b"abc", 1)
    with pytest.raises(NonFiniteLogitsError):
        sampling_distribution(torch.full((260,), float("nan")))
