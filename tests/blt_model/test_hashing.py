import pytest
import torch

from blt_model import HashNgramEmbedding, ngram_hash
from blt_model.nn.hashing import HASH_PRIMES


def test_buckets_equal_transformers():
    modeling = pytest.importorskip("transformers.models.blt.modeling_blt")
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        T = int(torch.randint(1, 200, (1,), generator=g))
        ids = torch.randint(0, 260, (3, T), generator=g)
        for prime in HASH_PRIMES[:4]:
            for n in (2, 3, 5, 8):
                for buckets in (64, 30000, 500002):
                    ours = ngram_hash(ids, n, prime, buckets)
                    ref = modeling.byte_group_hash_function(ids, n, prime, buckets)
                    assert torch.equal(ours, ref), (trial, prime, n, buckets)


def test_incremental_buckets_equal_batched():
    emb = HashNgramEmbedding(8, [3, 4, 5, 6, 7, 8], 500002, num_functions=3)
    ids = torch.randint(0, 260, (1, 50))
    full = emb.bucket_ids(ids)[0]
    for t in range(50):
        recent = ids[0, max(0, t - 7): t + 1].tolist()
        assert emb.last_bucket_ids(recent) == full[t].tolist()
    assert int(full.max()) < 3 * 6 * 500002 and int(full.min()) >= 0
