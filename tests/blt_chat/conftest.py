"""Shared fixtures: a private config dir for every test, and a real tiny random-weight model."""

from __future__ import annotations

import pytest
import torch

from blt_chat.service import ModelService
from blt_model import BLTConfig

TINY = dict(
    hidden_size=32, intermediate_size=64, num_heads=2, global_hidden_size=64, global_intermediate_size=128,
    global_num_heads=2, global_layers=1, encoder_layers=1, decoder_layers=1, entropy_model_layers=1,
    entropy_hidden_size=32, entropy_num_heads=2, entropy_intermediate_size=64, ngram_vocab_size=64,
    cross_attn_k=2, window_size=32, entropy_context_size=32,
)


def tiny_config(**kw) -> BLTConfig:
    return BLTConfig(**{**TINY, **kw})


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv("BLT_CHAT_CONFIG_DIR", str(d))
    monkeypatch.setenv("BLT_CHAT_DATA_DIR", str(tmp_path / "data"))
    return d


@pytest.fixture(scope="session")
def tiny_service_factory():
    torch.set_num_threads(1)

    def make(**kw) -> ModelService:
        return ModelService.random(tiny_config(**kw), device="cpu", seed=0)

    return make


@pytest.fixture
def tiny_service(tiny_service_factory) -> ModelService:
    return tiny_service_factory()



@pytest.fixture
def endless_service(tiny_service_factory) -> ModelService:
    """A tiny random-weight model that practically never ends an answer by itself (random
    weights emit EOS every few hundred bytes): its EOS logit is 0 while the other logits are
    scaled up. For tests that need a generation still running when they act."""
    from blt_model.ids import EOS_ID

    svc = tiny_service_factory()
    with torch.no_grad():
        head = svc.model.decoder.head.weight
        head.mul_(20)
        head[EOS_ID] = 0
    return svc
