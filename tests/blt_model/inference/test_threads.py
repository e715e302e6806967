"""The one thread policy of `blt generate`, `blt eval` and the app (inference/threads.py)."""

import torch

import blt_chat.service as service
from blt_model.inference.threads import (
    MAX_THREADS,
    choose_threads,
    physical_cores,
    use_thread_policy,
)


def test_omp_num_threads_wins():
    assert choose_threads({"OMP_NUM_THREADS": "3"}, cores=64) == 3
    assert choose_threads({"OMP_NUM_THREADS": "1"}, cores=2) == 1


def test_physical_cores_less_one_capped():
    assert choose_threads({}, cores=1) == 1
    assert choose_threads({}, cores=2) == 1  # one core left to the UI / other processes
    assert choose_threads({}, cores=5) == 4
    assert choose_threads({}, cores=128) == MAX_THREADS
    # a malformed or zero value is ignored, not an error
    assert choose_threads({"OMP_NUM_THREADS": "0"}, cores=4) == 3
    assert choose_threads({"OMP_NUM_THREADS": "x"}, cores=4) == 3
    assert 1 <= physical_cores()


def test_cli_and_app_use_the_policy(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert use_thread_policy() == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        service.limit_cpu_threads()  # the app calls the library function
        assert torch.get_num_threads() == choose_threads()
    finally:
        torch.set_num_threads(before)
