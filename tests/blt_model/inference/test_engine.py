"""The generation engines' shared interface and SamplingConfig, the one validator of sampling."""

import inspect
import json

import pytest
import torch

from blt_model import SamplingConfig, encode, generate_stream, generate_text
from blt_model.inference.engine import CachedEngine, Engine, ReferenceEngine, make_engine
from tests.helpers import tiny_model

PROMPT = "Once upon a time,\nthere was a byte. "


def _run(engine: Engine, ids: list[int], steps: list[int]):
    """Prefill, then one step per id -> every output, positions concatenated."""
    outs = [engine.prefill([ids])] + [engine.step([i]) for i in steps]
    logits = torch.cat([o.logits for o in outs], 1)
    ent = torch.cat([o.entropies for o in outs], 1)
    starts = torch.cat([o.patch_starts for o in outs], 1)
    return outs, logits, ent, starts


@pytest.mark.parametrize("overrides", [dict(), dict(decoder_memory_patches=2, last_position_continues_patch=True)])
def test_engines_agree_over_prompt_and_steps(overrides):
    model = tiny_model(**overrides)
    ids = encode(PROMPT)
    steps = encode("and it ended a patch. ok", add_bos=False)
    cached, c_logits, c_ent, c_starts = _run(CachedEngine(model), ids, steps)
    ref, r_logits, r_ent, r_starts = _run(ReferenceEngine(model), ids, steps)
    T = len(ids) + len(steps)
    assert c_logits.shape == r_logits.shape == (1, T, 260)
    assert float((c_logits - r_logits).abs().max()) <= 1e-4
    assert float((c_ent - r_ent).abs().max()) <= 1e-4
    assert torch.equal(c_starts, r_starts) and bool(c_starts[0, 0])  # BOS starts patch 0
    assert 3 < int(c_starts.sum()) < T  # a real mix of patch starts
    for c, r in zip(cached, ref):
        assert c.next_logits.shape == (1, 260) and torch.equal(c.next_start, r.next_start)
    # the next start of one call is the first start of the following one
    for a, b in zip(cached, cached[1:]):
        assert bool(a.next_start[0]) == bool(b.patch_starts[0, 0])


@pytest.mark.parametrize("cls", [ReferenceEngine])  # CachedEngine runs batches: tests/.../test_batch.py
def test_batches_are_refused_until_implemented(cls):
    engine = cls(tiny_model(calibrate=False))
    with pytest.raises(RuntimeError, match="prefill first"):
        engine.step([65])
    with pytest.raises(NotImplementedError, match="batches of 2"):
        engine.prefill([encode("ab"), encode("cd")])
    engine.prefill([encode("ab")])
    with pytest.raises(NotImplementedError, match="batches of 2"):
        engine.step([65, 66])
    assert "B > 1" in inspect.getdoc(inspect.getmodule(Engine))  # how batches are meant to work


def test_make_engine_by_name_or_instance():
    model = tiny_model(calibrate=False)
    assert isinstance(make_engine(model, "reference"), ReferenceEngine)
    with pytest.raises(ValueError, match="engine: must be one of cached, compiled, reference"):
        make_engine(model, "fast")
    engine = CachedEngine(model)
    assert make_engine(model, engine) is engine
    with pytest.raises(ValueError, match="patch_config"):
        make_engine(model, engine, engine.patch_config)
    with pytest.raises(ValueError, match="different model"):
        make_engine(tiny_model(calibrate=False), engine)
    events = list(generate_stream(model, "hi", engine=engine, max_new_bytes=5, seed=0))
    assert len(events) <= 5 and engine.memory_bytes() > 0  # the caches the run ended with


@pytest.mark.parametrize("field,value", [
    ("temperature", -0.1), ("temperature", float("nan")), ("top_k", -1), ("top_k", 2.0), ("top_p", 0.0),
    ("top_p", 1.5), ("top_p", None), ("repetition_penalty", 0), ("repetition_penalty", float("inf")),
    ("seed", -1), ("seed", 2**64), ("seed", True), ("max_new_bytes", -1), ("max_new_bytes", 1.5),
    ("stop", [""]), ("stop", [3]), ("stop", 7),
])
def test_sampling_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        SamplingConfig(**{field: value})
    with pytest.raises(ValueError, match=f"^{field}: "):
        SamplingConfig().replace(**{field: value})
    with pytest.raises(ValueError, match=f"^{field}: "):
        generate_stream(tiny_model(calibrate=False), "x", **{field: value})


def test_sampling_config_json_round_trip_and_unknown_keys():
    cfg = SamplingConfig(temperature=0.5, top_k=3, top_p=0.9, seed=4, max_new_bytes=9, stop=["\nUser:", b"\xff\x00"])
    assert cfg.stop == (b"\nUser:", b"\xff\x00")
    assert SamplingConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert SamplingConfig(stop="ab").stop == (b"ab",)
    with pytest.raises(ValueError, match="unknown field 'temp'"):
        SamplingConfig.from_dict({"temp": 0.5})
    with pytest.raises(ValueError, match="unknown field 'use_cache'"):
        generate_text(tiny_model(calibrate=False), "x", use_cache=False)
    with pytest.raises(ValueError, match="expected a JSON object"):
        SamplingConfig.from_dict([1])
    with pytest.raises(TypeError, match="sampling: expected a SamplingConfig"):
        generate_stream(tiny_model(calibrate=False), "x", 16)


def test_stream_and_text_take_the_same_arguments():
    a, b = inspect.signature(generate_stream).parameters, inspect.signature(generate_text).parameters
    assert [(p.name, p.kind, p.default) for p in a.values()] == [(p.name, p.kind, p.default) for p in b.values()]
    model = tiny_model()
    sampling = SamplingConfig(temperature=0.9, seed=5, max_new_bytes=30)
    kwargs = dict(engine="cached", top_k=20)
    text = generate_text(model, "abc", sampling, **kwargs)
    events = list(generate_stream(model, "abc", sampling, **kwargs))
    assert text == bytes(e.byte for e in events if e.byte is not None).decode("utf-8", errors="replace")
    with_prompt = generate_text(model, "abc", sampling, report_prompt=True, **kwargs)
    assert with_prompt == "abc" + text


def test_stop_strings_end_the_stream_after_their_last_byte():
    model = tiny_model()
    full = [e.byte for e in generate_stream(model, "abc", max_new_bytes=60, temperature=1.0, seed=2)]
    full = [b for b in full if b is not None]
    stop = bytes(full[4:6])
    first = bytes(full).find(stop)
    events = list(generate_stream(model, "abc", max_new_bytes=60, temperature=1.0, seed=2, stop=[stop]))
    assert bytes(e.byte for e in events) == bytes(full[: first + len(stop)])  # the stop string is streamed
    text = generate_text(model, "abc", max_new_bytes=60, temperature=1.0, seed=2, stop=stop)
    assert text == bytes(full[:first]).decode("utf-8", errors="replace")  # and cut from the text
