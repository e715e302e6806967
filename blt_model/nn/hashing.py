"""Hash n-gram embeddings (BLT paper section 3.2.1).

Each n-gram of ids ending at position t is hashed with a polynomial rolling hash into one of
`ngram_vocab_size` rows of its own table. The arithmetic (int64 with wrap-around, positions
before the start padded with id 0, `%` with a non-negative result) matches transformers'
`byte_group_hash_function`, so the released checkpoints' tables can be used as they are.
"""

from __future__ import annotations

import torch
from torch import nn

# Primes of the released BLT models, one per hash function.
HASH_PRIMES = (
    1000000007, 5915587277, 1500450271, 3267000013, 5754853343, 4093082899,
    9576890767, 3628273133, 2860486313, 5463458053, 3367900313,
)


def ngram_hash(ids: torch.Tensor, n: int, prime: int, buckets: int) -> torch.Tensor:
    """ids: [B, T] -> bucket of the n-gram ending at each position, [B, T] in [0, buckets)."""
    ids = ids.long()
    B, T = ids.shape
    padded = torch.cat([ids.new_zeros(B, n - 1), ids], dim=1)
    windows = padded.unfold(1, n, 1)  # [B, T, n], oldest id first
    powers = torch.tensor(prime, dtype=torch.int64, device=ids.device) ** torch.arange(n, device=ids.device)
    h = (windows * powers).sum(-1)  # wraps around in int64, as the reference does
    return torch.remainder(h, buckets)


_MOD = 2**64


class HashNgramEmbedding(nn.Module):
    """Sum of hashed n-gram embeddings for n in `sizes` and `num_functions` hash functions.

    One fused table of `num_functions * len(sizes) * buckets` rows; table i (function f,
    size n in order) occupies rows [i * buckets, (i + 1) * buckets).
    """

    def __init__(self, dim: int, sizes: list[int], buckets: int, num_functions: int = 1) -> None:
        super().__init__()
        if num_functions > len(HASH_PRIMES):
            raise ValueError(f"ngram_hash_functions: at most {len(HASH_PRIMES)}, got {num_functions}")
        self.sizes, self.buckets, self.num_functions = list(sizes), buckets, num_functions
        self.table = nn.Embedding(num_functions * len(self.sizes) * buckets, dim)
        self.max_n = max(self.sizes) if self.sizes else 1

    def bucket_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, T, tables] row indices into the fused table."""
        out = []
        i = 0
        for f in range(self.num_functions):
            for n in self.sizes:
                out.append(ngram_hash(ids, n, HASH_PRIMES[f], self.buckets) + i * self.buckets)
                i += 1
        return torch.stack(out, dim=-1)

    def last_bucket_ids(self, recent: list[int]) -> list[int]:
        """Rows for the n-grams ending at the last of `recent` ids (at least max_n - 1 ids
        before it, or the start of the sequence). Plain integer arithmetic modulo 2**64 gives
        the same wrap-around as the int64 tensor path, without a dozen tensor ops per byte."""
        out, i = [], 0
        for f in range(self.num_functions):
            prime = HASH_PRIMES[f]
            for n in self.sizes:
                window = recent[-n:]
                window = [0] * (n - len(window)) + window  # pad before the start with id 0
                h = 0
                for j, tok in enumerate(window):
                    h = (h + tok * pow(prime, j, _MOD)) % _MOD
                if h >= _MOD // 2:  # back to signed int64
                    h -= _MOD
                out.append(h % self.buckets + i * self.buckets)
                i += 1
        return out

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: [B, T] -> [B, T, dim] (sum over all tables)."""
        if not self.sizes:
            return self.table.weight.new_zeros(*ids.shape, self.table.embedding_dim)
        return self.table(self.bucket_ids(ids)).sum(-2)
