"""Training proofs: loss goes down, exact resume, atomic saves, non-finite steps, 2-process DDP."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
import torch.multiprocessing as mp

import blt_model.train.loop as loop
import blt_model.train.state as train_state
import blt_model.train.step as train_step
from blt_model import BLT, load_model, save_model
from blt_model.train import (
    TrainingConfig,
    TrainingError,
    load_state,
    train,
    train_model,
)
from blt_model.train.data import ByteDataset, make_loader
from blt_model.train.evaluation import evaluate_loader
from tests.helpers import tiny_config

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n\n") * 12


def small_cfg(**kw):
    # fixed patching: stage 2 alone, no entropy model to train
    base = dict(decoder_layers=1, window_size=32, entropy_context_size=32, max_position_embeddings=256,
                patching={"scheme": "fixed", "stride": 4})
    return tiny_config(**{**base, **kw})


def loaders(batch_size=4, seq=48, seed=0, rank=None, world=None):
    cut = int(len(TEXT) * 0.9)
    tr = ByteDataset([TEXT[:cut]], seq, mode="train", seed=seed)
    va = ByteDataset([TEXT[cut:]], seq, mode="eval")
    return (make_loader(tr, batch_size, train=True, seed=seed, rank=rank, world_size=world),
            make_loader(va, 8, train=False, rank=rank, world_size=world))


def tcfg(**kw):
    base = dict(learning_rate=3e-3, warmup_steps=3, batch_size=4, max_sequence_length=48, eval_interval=10,
                eval_max_batches=None, num_epochs=50, progress=False, patience=0)
    return TrainingConfig(**{**base, **kw})


def test_30_steps_lower_validation_loss(tmp_path):
    torch.manual_seed(0)
    model = BLT(small_cfg())
    tl, vl = loaders()
    before = evaluate_loader(model, vl)["loss"]
    model, best = train_model(model, tl, vl, tcfg(max_steps=30), out_dir=tmp_path)
    after = evaluate_loader(model, vl)["loss"]
    assert after == pytest.approx(best)
    assert after < before - 0.5, (before, after)
    # the run directory: loadable best/ and last/, a weights-only state, a metrics log
    assert load_model(tmp_path / "best").config.to_dict() == model.config.to_dict()
    load_model(tmp_path / "last")
    state = load_state(tmp_path / "state.pt")
    assert state["step"] == 30 and "optimizer" in state and "rng" in state
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if "eval" in x]
    assert [x["step"] for x in evals] == [10, 20, 30]
    assert {"loss", "bits_per_byte", "accuracy", "perplexity", "confidence_mean", "mean_patch_size"} <= set(evals[0]["eval"])


def test_resume_matches_uninterrupted_run(tmp_path):
    k = 5
    cfg = tcfg(max_steps=k + 1, eval_interval=100)

    def run(out, stop_at=None, resume=False):
        torch.manual_seed(0)
        model = BLT(small_cfg())
        losses = {}

        def on_step(step, loss):
            losses[step] = loss
            return stop_at is not None and step >= stop_at

        tl, vl = loaders()
        train_model(model, tl, vl, cfg, out_dir=out, resume=resume, on_step=on_step)
        return losses

    straight = run(tmp_path / "a")
    partial = run(tmp_path / "b", stop_at=k)
    assert max(partial) == k and load_state(tmp_path / "b" / "state.pt")["step"] == k
    resumed = run(tmp_path / "b", resume=True)
    assert list(resumed) == [k + 1]
    assert resumed[k + 1] == straight[k + 1]  # bit-identical on CPU with a fixed seed
    for s in range(1, k + 1):
        assert partial[s] == straight[s]


class _Clock:
    """A stand-in for the time module whose clock moves only when the test says so."""

    def __init__(self) -> None:
        self.t = 1000.0

    def perf_counter(self) -> float:
        return self.t


def _lrs(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {x["step"]: x["lr"] for x in lines if "lr" in x}


def test_max_minutes_alone_decays_over_the_time_budget_and_resume_keeps_it(tmp_path, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(loop, "time", clock)
    # 10 steps of 6 s fill a 1-minute budget; 50 epochs would be the old, never-reached horizon
    cfg = tcfg(max_minutes=1.0, warmup_steps=0, log_interval=1, eval_interval=100, min_lr_ratio=0.1)

    def run(out, stop_at=None, resume=False):
        torch.manual_seed(0)
        model = BLT(small_cfg())

        def on_step(step, loss):
            clock.t += 6.0
            return stop_at is not None and step >= stop_at

        tl, vl = loaders()
        train_model(model, tl, vl, cfg, out_dir=out, resume=resume, on_step=on_step)
        return _lrs(out)

    straight = run(tmp_path / "a")
    assert max(straight) == 10  # stopped by the clock
    lrs = [straight[k] for k in sorted(straight)]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] == pytest.approx(cfg.learning_rate)
    # the last step runs at 54 of 60 s: within 3% of the floor of the cosine
    assert lrs[-1] < cfg.learning_rate * 0.13
    partial = run(tmp_path / "b", stop_at=4)
    assert max(partial) == 4
    clock.t += 500.0  # time between the runs does not count
    resumed = run(tmp_path / "b", resume=True)
    assert sorted(resumed) == list(range(1, 11))  # the resumed run stops at the same budget
    for step in range(5, 11):
        assert resumed[step] == pytest.approx(straight[step], rel=1e-9)
    assert load_state(tmp_path / "b" / "state.pt")["elapsed_s"] == pytest.approx(60.0)


def test_interrupted_save_keeps_previous_best_loadable(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = BLT(small_cfg())
    save_model(model, tmp_path / "best")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)

    def crash(*a, **kw):
        raise OSError("killed between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_model(model, tmp_path / "best")
    with pytest.raises(OSError):
        train_state.write_state_file(tmp_path / "state.pt", {"format": 1})
    monkeypatch.undo()
    loaded = load_model(tmp_path / "best")
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not (tmp_path / "state.pt").exists()
    assert not [p for p in (tmp_path / "best").iterdir() if p.name.endswith(".tmp")]


def test_nonfinite_steps_are_skipped_then_stop(tmp_path, monkeypatch):
    real = train_step.lm_loss
    calls = {"n": 0}

    def flaky(logits, ids, reduction="mean"):
        calls["n"] += 1
        loss, n = real(logits, ids, reduction)
        return (loss * math.nan if calls["n"] == 3 else loss), n

    monkeypatch.setattr(train_step, "lm_loss", flaky)
    torch.manual_seed(0)
    model = BLT(small_cfg())
    tl, vl = loaders()
    train_model(model, tl, vl, tcfg(max_steps=5), out_dir=tmp_path)
    state = load_state(tmp_path / "state.pt")
    assert state["step"] == 5 and state["nonfinite_steps"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())

    monkeypatch.setattr(train_step, "lm_loss", lambda logits, ids, reduction="mean": (
        real(logits, ids, reduction)[0] * math.inf, real(logits, ids, reduction)[1]))
    with pytest.raises(TrainingError, match="3 steps in a row.*non-finite"):
        train_model(model, tl, vl, tcfg(max_steps=20, max_nonfinite_steps=3), out_dir=tmp_path / "r2")
    load_model(tmp_path / "best")  # the earlier best model is untouched


def test_training_config_validation():
    with pytest.raises(ValueError, match="unknown field 'lr'"):
        TrainingConfig.from_dict({"lr": 1})
    with pytest.raises(ValueError, match="batch_size"):
        TrainingConfig(batch_size=0)


def test_two_stage_train_from_files(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    cfg = tiny_config(decoder_layers=1, window_size=32, entropy_context_size=32, max_position_embeddings=256,
                      target_mean_patch_size=3.0)
    tc = tcfg(max_steps=8, entropy_max_steps=4, eval_interval=4, eval_max_batches=2)
    result = train([str(data)], out_dir=tmp_path / "run", model_config=cfg, training=tc)
    thr = result.entropy_threshold
    assert thr is not None and math.isfinite(thr)
    best = load_model(tmp_path / "run" / "best")
    assert best.config.patching.entropy_threshold == pytest.approx(thr) and best.config.entropy_threshold_calibrated
    assert load_model(tmp_path / "run" / "entropy" / "best").config.entropy_threshold_calibrated is False
    assert (tmp_path / "run" / "entropy" / "done.json").exists()
    # the entropy model is frozen in stage 2: identical to the stage-1 best
    e1 = load_model(tmp_path / "run" / "entropy" / "best").entropy_model.state_dict()
    for k, v in best.entropy_model.state_dict().items():
        assert torch.equal(v, e1[k])
    # resume continues the BLT stage with the stored config and threshold
    tc2 = tc.replace(max_steps=10)
    again = train([str(data)], out_dir=tmp_path / "run", training=tc2, resume=True)
    assert again.entropy_threshold == pytest.approx(thr)
    assert load_state(tmp_path / "run" / "state.pt")["step"] == 10
    with pytest.raises(TrainingError, match="nothing to resume"):
        train([str(data)], out_dir=tmp_path / "fresh", training=tc, resume=True)


# --- two processes (gloo) -------------------------------------------------------------------------

def _ddp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = BLT(small_cfg())
        tl, vl = loaders(batch_size=4 // world)
        train_model(model, tl, vl, tcfg(max_steps=4, eval_interval=2), out_dir=out if rank == 0 else None)
        torch.save({k: v.detach() for k, v in model.state_dict().items()}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_matches_one_process(tmp_path):
    out = str(tmp_path)
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # one process with the same global batch (4 = 2 x 2)
    torch.manual_seed(0)
    model = BLT(small_cfg())
    tl, vl = loaders(batch_size=4)
    train_model(model, tl, vl, tcfg(max_steps=4, eval_interval=2), out_dir=tmp_path / "single")
    changed = 0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5, msg=k)
        changed += int(not torch.equal(v, BLT(small_cfg()).state_dict()[k]))
    assert changed > 0
    # only rank 0 wrote the run directory
    assert (tmp_path / "best").exists() and (tmp_path / "metrics.jsonl").exists()


def test_out_of_memory_halves_micro_batch_keeping_the_step(tmp_path, monkeypatch):
    real = train_step.lm_loss
    cfg = tcfg(max_steps=2, eval_interval=100)
    torch.manual_seed(0)
    ref = BLT(small_cfg())
    tl, vl = loaders()
    losses_ref = {}
    train_model(ref, tl, vl, cfg, on_step=lambda s, loss: losses_ref.__setitem__(s, loss))

    def picky(logits, ids, reduction="mean"):
        if ids.shape[0] > 1:  # pretend only one sequence fits in memory
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(logits, ids, reduction)

    monkeypatch.setattr(train_step, "lm_loss", picky)
    torch.manual_seed(0)
    model = BLT(small_cfg())
    tl, vl = loaders()
    losses = {}
    train_model(model, tl, vl, cfg, out_dir=tmp_path, on_step=lambda s, loss: losses.__setitem__(s, loss))
    assert load_state(tmp_path / "state.pt")["micro_batch_size"] == 1
    for s in losses_ref:
        assert losses[s] == pytest.approx(losses_ref[s], rel=1e-5)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("compile_model", [False, True])
def test_cuda_bf16_two_stage_training(tmp_path, compile_model):
    """On a GPU: bf16 autocast (and optionally torch.compile) trains and lowers the loss."""
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    cfg = tiny_config(decoder_layers=1, window_size=32, entropy_context_size=32, max_position_embeddings=256,
                      target_mean_patch_size=3.0)
    tc = tcfg(max_steps=12, entropy_max_steps=4, eval_interval=6, eval_max_batches=2, precision="bf16",
              compile=compile_model)
    result = train([str(data)], out_dir=tmp_path / "run", model_config=cfg, training=tc, device="cuda")
    assert math.isfinite(result.best_val_loss)
    assert load_model(tmp_path / "run" / "best") is not None
