"""Shared fixtures: a private config dir for every test, and a real tiny random-weight model."""

from __future__ import annotations

import pytest
import torch

from blt_chat.service import ModelService
from blt_model import BLTConfig
from tests.helpers import tiny_config as _suite_tiny_config

# The suite's tiny config (tests/helpers.py) as the app's tests run it: a one-layer decoder,
# 32-byte windows and the default 2048 positions, the model their SVG snapshots were recorded with.
APP_TINY = dict(decoder_layers=1, window_size=32, entropy_context_size=32, max_position_embeddings=2048)


def tiny_config(**kw) -> BLTConfig:
    return _suite_tiny_config(**{**APP_TINY, **kw})


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
