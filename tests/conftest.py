import pytest
import torch

# Tiny models gain nothing from intra-op threads, and on a loaded 2-core machine extra threads
# make them many times slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
