"""The engines on CUDA (benchmarks/gpu_check.sh runs these; skipped without CUDA): the cached
engine equals the full forward, and the compiled step equals the eager one, in float32 (1e-4)
and bfloat16 (greedy bytes identical over most of the run; logits close)."""

import pytest
import torch

from blt_model import encode
from blt_model.inference.engine import CachedEngine, CompiledEngine, ReferenceEngine
from tests.helpers import SAMPLE_TEXT, tiny_model

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _greedy(engine, ids: list[int], n: int) -> tuple[torch.Tensor, list[int]]:
    out = engine.prefill([ids], all_logits=False)
    logits, toks = [], []
    for _ in range(n):
        logits.append(out.next_logits[0].float().cpu())
        toks.append(int(out.next_logits[0, 4:].argmax()) + 4)
        out = engine.step([toks[-1]])
    return torch.stack(logits), toks


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 0.1)])
def test_cuda_compiled_equals_eager(dtype, tol):
    model = tiny_model().to("cuda", dtype)
    ids = encode(SAMPLE_TEXT)
    eager, eager_toks = _greedy(CachedEngine(model), ids, 300)
    engine = CompiledEngine(model)
    assert engine.compiled is not None, engine.notice
    comp, comp_toks = _greedy(engine, ids, 300)
    assert float((comp - eager).abs().max()) <= tol
    if dtype == torch.float32:
        assert comp_toks == eager_toks
    else:  # bf16 rounding may flip a near tie late in the run
        assert comp_toks[:50] == eager_toks[:50]


def test_cuda_cached_equals_reference():
    model = tiny_model().to("cuda")
    ids = encode(SAMPLE_TEXT)
    cached, toks = _greedy(CachedEngine(model), ids, 40)
    ref, ref_toks = _greedy(ReferenceEngine(model), ids, 40)
    assert float((cached - ref).abs().max()) <= 1e-4 and toks == ref_toks
