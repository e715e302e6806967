"""blt finetune (issue 18): the shipped model learns a new domain, frozen parts stay bit-identical,
resume continues the same loss curve, prompts carry no loss, JSON Lines of both kinds."""

from __future__ import annotations

import json
import random

import pytest
import torch

from blt_model import BLT
from blt_model.io.checkpoint import load_model, save_model
from blt_model.io.shipped import shipped_model_path
from blt_model.nn.model import lm_loss
from blt_model.train.errors import RunFileError
from blt_model.train.evaluation import compute_bits_per_byte, evaluate_loader
from blt_model.train.examples import (
    FinetuneDataset,
    collate_pairs,
    make_pair_loader,
    read_finetune_data,
    split_batch,
)
from blt_model.train.finetune import FinetuneOptions, finetune, finetune_config
from blt_model.train.reporting import TrainingReporter
from tests.helpers import tiny_config


def log_lines(seed: int, n: int) -> str:
    """A generated domain the shipped model (English prose) has never seen: server log lines."""
    r = random.Random(seed)
    return "".join(
        f"2024-0{r.randint(1, 9)}-{r.randint(10, 28)} {r.randint(10, 23)}:{r.randint(10, 59)}:{r.randint(10, 59)} "
        f"{r.choice(['INFO', 'WARN', 'DEBUG'])} user={r.choice(['alice', 'bob', 'carol', 'dave'])} "
        f"action={r.choice(['login', 'logout', 'upload', 'delete'])} id={r.randint(1000, 9999)}\n"
        for _ in range(n))


def tiny_dir(tmp_path, seed: int = 0):
    torch.manual_seed(seed)
    return save_model(BLT(tiny_config(patching={"scheme": "space"})), tmp_path / "base")


def fast(**extra):
    return {"batch_size": 4, "eval_batch_size": 4, "max_sequence_length": 48, "eval_interval": 3,
            "learning_rate": 3e-3, "log_interval": 1, **extra}


def recorder(losses: dict[int, float], stop_at: int | None = None):
    def on_step(step: int, loss: float) -> bool:
        losses[step] = loss
        return step == stop_at
    return on_step


def test_shipped_model_learns_a_new_domain_and_its_entropy_model_stays_frozen(tmp_path):
    base = shipped_model_path()
    if base is None:
        pytest.skip("no shipped model in this checkout")
    (tmp_path / "logs.txt").write_text(log_lines(1, 300))
    held_out = log_lines(2, 25)  # other lines of the same domain, never trained on
    model = load_model(base)
    before = compute_bits_per_byte(model, held_out, window=96)["bits_per_byte"]
    result = finetune(base, tmp_path / "logs.txt", out_dir=tmp_path / "run",
                      training=fast(max_steps=12, max_sequence_length=96, eval_interval=6, learning_rate=1e-3))
    after = compute_bits_per_byte(result.model, held_out, window=96)["bits_per_byte"]
    assert after < before - 1.0, (before, after)
    reloaded = load_model(tmp_path / "run" / "best")
    assert compute_bits_per_byte(reloaded, held_out, window=96)["bits_per_byte"] == pytest.approx(after, abs=1e-6)
    for name, t in model.entropy_model.state_dict().items():
        assert torch.equal(t, reloaded.entropy_model.state_dict()[name]), name


def test_frozen_global_model_and_hash_embeddings_are_bit_identical(tmp_path):
    base = tiny_dir(tmp_path)
    (tmp_path / "d.txt").write_text(log_lines(3, 120))
    result = finetune(base, tmp_path / "d.txt", out_dir=tmp_path / "run", training=fast(max_steps=4),
                      options=FinetuneOptions(freeze=("global", "hash_embeddings")))
    start, end = load_model(base).state_dict(), load_model(tmp_path / "run" / "last").state_dict()
    frozen = ("entropy_model.", "global_model.", "encoder.hash_embed.")
    assert all(torch.equal(start[k], end[k]) for k in start if k.startswith(frozen))
    assert not torch.equal(start["decoder.head.weight"], end["decoder.head.weight"])  # the rest trains
    assert not torch.equal(start["encoder.embed.weight"], end["encoder.embed.weight"])
    assert all(not p.requires_grad for p in result.model.global_model.parameters())


def test_resume_continues_the_same_loss_curve(tmp_path):
    base = tiny_dir(tmp_path)
    (tmp_path / "d.txt").write_text(log_lines(4, 120))
    whole: dict[int, float] = {}
    finetune(base, tmp_path / "d.txt", out_dir=tmp_path / "a", training=fast(max_steps=6), on_step=recorder(whole))
    first: dict[int, float] = {}
    finetune(base, tmp_path / "d.txt", out_dir=tmp_path / "b", training=fast(max_steps=6),
             on_step=recorder(first, stop_at=4))
    assert sorted(first) == [1, 2, 3, 4]
    second: dict[int, float] = {}
    finetune(base, tmp_path / "d.txt", out_dir=tmp_path / "b", training=fast(max_steps=6), resume=True,
             on_step=recorder(second))
    assert sorted(second) == [5, 6]
    for step, loss in {**first, **second}.items():
        assert loss == pytest.approx(whole[step], abs=1e-6), step


def test_activation_checkpointing_changes_no_number(tmp_path):
    base = tiny_dir(tmp_path)
    (tmp_path / "d.txt").write_text(log_lines(7, 120))
    plain: dict[int, float] = {}
    recomputed: dict[int, float] = {}
    finetune(base, tmp_path / "d.txt", out_dir=tmp_path / "a", training=fast(max_steps=3), on_step=recorder(plain))
    finetune(base, tmp_path / "d.txt", out_dir=tmp_path / "b", training=fast(max_steps=3),
             options=FinetuneOptions(activation_checkpointing=True), on_step=recorder(recomputed))
    assert recomputed == pytest.approx(plain, abs=1e-6) and len(plain) == 3


def test_early_stopping_keeps_the_best_model(tmp_path):
    """Training on one byte and validating on another: validation soon gets worse, and with
    patience 1 the run stops at the first validation that does not improve; best/ holds the
    best validation's weights, last/ the worse ones."""
    base = tiny_dir(tmp_path)
    (tmp_path / "a.txt").write_text("a" * 4000)
    (tmp_path / "z.txt").write_text("z" * 400)
    outcomes = []

    class Reporter(TrainingReporter):
        def on_stage_end(self, name, outcome):
            outcomes.append(outcome)

    losses: dict[int, float] = {}
    finetune(base, tmp_path / "a.txt", tmp_path / "z.txt", out_dir=tmp_path / "run", reporter=Reporter(),
             training=fast(max_steps=20, eval_interval=1, patience=1), on_step=recorder(losses))
    outcome = outcomes[0]
    assert outcome.stop_reason == "early_stop" and outcome.step < 20 and sorted(losses) == list(range(1, outcome.step + 1))
    valid = make_pair_loader(FinetuneDataset([b"z" * 400], [], 48, mode="eval"), 4, train=False)
    best = evaluate_loader(load_model(tmp_path / "run" / "best"), valid)["loss"]
    assert best == pytest.approx(outcome.best_val_loss, abs=1e-6)
    assert evaluate_loader(load_model(tmp_path / "run" / "last"), valid)["loss"] > best
    with pytest.raises(RunFileError, match="resume it without --shard"):
        finetune(base, tmp_path / "a.txt", out_dir=tmp_path / "run", resume=True, options=FinetuneOptions(shard=True))


def test_prompts_carry_no_loss():
    """Only completion bytes are scored: the gradient on every logit that predicts a prompt byte
    is exactly zero, and the parameter gradients are those of the cross-entropy over the
    completion's bytes alone. (Changing the prompt's bytes does change the gradients: the
    completion reads the prompt; what must not change them is the prompt's own prediction.)"""
    torch.manual_seed(0)
    model = BLT(tiny_config(patching={"scheme": "space"}))
    prompt, completion = b"Question: what is 2+2?\n", b"Answer: 4"
    ds = FinetuneDataset([], [(prompt, completion)], 64)
    ids, scored = split_batch(collate_pairs([ds[0]]))
    logits = model(ids)
    logits.retain_grad()
    loss, n = lm_loss(logits, scored)
    loss.backward()
    assert n == len(completion)
    p, c = len(prompt), len(completion)  # logits[:, t] predicts ids[:, t + 1]; the prompt is ids[1 : 1 + p]
    assert torch.count_nonzero(logits.grad[0, :p]) == 0
    assert torch.count_nonzero(logits.grad[0, p:p + c]) > 0
    grads = {k: v.grad.clone() for k, v in model.named_parameters() if v.grad is not None}
    model.zero_grad()
    reference = torch.nn.functional.cross_entropy(model(ids)[0, p:p + c], ids[0, p + 1:p + 1 + c])
    reference.backward()
    assert reference.item() == pytest.approx(loss.item(), abs=1e-6)
    for k, v in model.named_parameters():
        if v.grad is not None:
            torch.testing.assert_close(grads[k], v.grad, rtol=1e-5, atol=1e-7)


def test_jsonl_text_and_prompt_completion_lines(tmp_path):
    f = tmp_path / "mixed.jsonl"
    lines = [{"text": "plain document"}, {"prompt": "Q: hi\n", "completion": "A: hello"}, {"other": 1}, "not json"]
    f.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n")
    data = read_finetune_data(f)
    assert data.texts == [b"plain document"] and data.examples == [(b"Q: hi\n", b"A: hello")]
    assert data.stats.skipped_jsonl_lines == 2
    ds = FinetuneDataset(data.texts, data.examples, 8)  # the example is cut to 7 bytes: prompt start dropped
    ids, scored = ds[len(ds) - 1]
    assert ids.tolist()[1:] == [b + 4 for b in b"A: hell"] and torch.equal(ids, scored)


def test_finetune_defaults_and_cli(tmp_path, capsys):
    cfg = finetune_config({"max_steps": 30})
    assert (cfg.learning_rate, cfg.weight_decay, cfg.warmup_steps, cfg.patience) == (1e-4, 0.0, 3, 3)
    assert cfg.num_epochs > 1000  # a step budget repeats the data until it ends
    assert finetune_config({}, max_sequence_length=128).max_sequence_length == 128
    from blt_model.cli import main

    base = tiny_dir(tmp_path)
    (tmp_path / "qa.jsonl").write_text("".join(
        json.dumps({"prompt": f"Q{i}: ", "completion": log_lines(i, 2)}) + "\n" for i in range(20)))
    argv = ["finetune", "--model", str(base), "--data", str(tmp_path / "qa.jsonl"), "--out", str(tmp_path / "run"),
            "--max-steps", "2", "--batch-size", "4", "--seq-len", "48", "--no-progress", "--freeze", "global"]
    assert main(argv) == 0
    assert "best model:" in capsys.readouterr().out
    assert load_model(tmp_path / "run" / "best").config == load_model(base).config
    assert main(argv) == 2  # the run exists: --resume or --overwrite
    assert main([*argv, "--resume", "--max-steps", "3"]) == 0


def test_a_transformers_format_model_finetunes_into_this_format(tmp_path):
    from tests.blt_model.test_hf_compat import _hf_model, _save

    source = _save(_hf_model(0), tmp_path / "hf")
    (tmp_path / "d.txt").write_text(log_lines(6, 80))
    losses: dict[int, float] = {}
    finetune(source, tmp_path / "d.txt", out_dir=tmp_path / "run", training=fast(max_steps=2),
             on_step=recorder(losses))
    start, tuned = load_model(source), load_model(tmp_path / "run" / "best")
    assert sorted(losses) == [1, 2] and tuned.config == start.config
    assert torch.equal(start.state_dict()["entropy_model.head.weight"], tuned.state_dict()["entropy_model.head.weight"])
    # the result goes back to transformers format (blt convert OUT/best DIR --to transformers)
    from blt_model import encode
    from blt_model.cli.commands import main as cli_main

    transformers = pytest.importorskip("transformers")
    assert cli_main(["convert", str(tmp_path / "run" / "best"), str(tmp_path / "back"), "--to", "transformers"]) == 0
    back = transformers.BltForCausalLM.from_pretrained(str(tmp_path / "back")).eval()
    ids = torch.tensor([encode("def f(x):\n    return x + 1\n")])
    with torch.no_grad():
        assert (back(ids, use_cache=False).logits - tuned(ids)).abs().max().item() <= 1e-4
