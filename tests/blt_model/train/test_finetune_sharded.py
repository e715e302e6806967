"""blt finetune --shard (issue 18): two CPU processes (gloo) with FSDP2 and activation
checkpointing give the losses of one plain process on the same batches, the sharded resume state continues on one process, and best/ and
last/ hold the gathered weights that load_model reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from blt_model.io.checkpoint import load_model, save_model
from blt_model.train.finetune import FinetuneOptions, finetune
from blt_model.train.sharding import POINTER_NAME
from tests.blt_model.train.test_finetune import log_lines, recorder
from tests.helpers import tiny_model

RUNNER = Path(__file__).with_name("finetune_runner.py")
ROOT = Path(__file__).resolve().parents[3]


def training(max_steps: int) -> dict:
    return {"batch_size": 4, "eval_batch_size": 4, "max_sequence_length": 48, "eval_interval": 3,
            "learning_rate": 3e-3, "log_interval": 1, "max_steps": max_steps, "schedule_steps": 5,
            "warmup_steps": 1, "precision": "fp32"}


def run_two_processes(tmp_path: Path, base: Path, data: Path, out: Path) -> dict:
    losses = tmp_path / "losses.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(RUNNER),
           str(base), str(data), str(out), str(losses), "3", "2"]  # 2 processes x batch 2 = batch 4
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"torch.distributed.run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(losses.read_text())


def test_two_sharded_processes_match_one_and_resume_on_one(tmp_path):
    # entropy patching: the (unsharded, frozen) entropy model places patches in training and validation
    base = save_model(tiny_model(), tmp_path / "base")
    data = tmp_path / "d.txt"
    data.write_text(log_lines(5, 120))
    reference: dict[int, float] = {}
    finetune(base, data, out_dir=tmp_path / "one", training=training(5), on_step=recorder(reference))

    sharded = run_two_processes(tmp_path, base, data, tmp_path / "two")
    assert sharded["world"] == 2
    losses = {int(k): v for k, v in sharded["losses"].items()}
    assert sorted(losses) == [1, 2, 3]
    for step, loss in losses.items():
        assert loss == pytest.approx(reference[step], abs=1e-4), step
    assert (tmp_path / "two" / POINTER_NAME).exists()
    # best/ and last/: one ordinary model directory, gathered from the shards
    assert len(list((tmp_path / "two" / "last").glob("*.safetensors"))) == 1
    load_model(tmp_path / "two" / "best")

    resumed: dict[int, float] = {}
    finetune(base, data, out_dir=tmp_path / "two", training=training(5), options=FinetuneOptions(shard=True),
             resume=True, on_step=recorder(resumed))
    assert sorted(resumed) == [4, 5]
    for step, loss in resumed.items():
        assert loss == pytest.approx(reference[step], abs=1e-4), step
    one, two = load_model(tmp_path / "one" / "last").state_dict(), load_model(tmp_path / "two" / "last").state_dict()
    for name, t in one.items():
        torch.testing.assert_close(two[name], t, rtol=0, atol=1e-4, msg=name)
