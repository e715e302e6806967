"""Generation engines: one interface, two implementations (docs/architecture.md, the
incremental algorithm).

An engine runs the model over growing byte sequences and reports, for every position it
consumes, the next-id logits, the entropy model's entropy and whether the position starts a
patch. `prefill(ids)` starts new sequences from their prompts; `step(next_ids)` appends one id
to each. The streaming loop (generation.py) is written once over this interface:

- `CachedEngine`: exact incremental generation. Each sequence keeps its caches in an
  `IncrementalState` (state.py); a step costs one entropy-model step, one encoder step, one
  decoder step and one global step only when the byte completes a patch.
- `ReferenceEngine`: no cache; every call is a full forward over the whole sequence. Slow, and
  the definition the cached engine must equal (tests compare them position by position).

Batches. Both methods take B sequences (`prefill([[...], [...]])`, `step([id_0, id_1])`) and
return tensors with the batch first. `CachedEngine` runs B > 1 sequences together in a
`BatchedState` (batch.py): each sequence has its own online patcher, so its own patch
boundaries; in a batched step the entropy model, encoder and decoder run for all B sequences,
the global stack only for the sequences whose byte completed a patch (gathered, stepped,
scattered back). Each sequence's logits equal the single-sequence engine's within 1e-4. The
sequences advance in lockstep, so a batched `prefill` takes prompts of one length (several
samples of one prompt: `engine.prefill([ids] * n)`, then `engine.step([id_0, ..., id_n-1])`
with each sample's next id); it feeds them one position at a time. `ReferenceEngine` runs one
sequence: B > 1 raises NotImplementedError there. The compressor (blt_model/codec) drives
`BatchedState` directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..config import PatchingConfig
from ..nn.entropy_model import entropy_of_logits
from ..nn.model import BLT
from ..patching import patch_starts
from .batch import BatchedState
from .compiled import compile_step
from .state import IncrementalState

__all__ = ["ENGINES", "CachedEngine", "CompiledEngine", "Engine", "ReferenceEngine", "StepOutput", "make_engine", "reference_step"]


@dataclass
class StepOutput:
    """What one `prefill` or `step` consumed, for B sequences of S consumed positions each.
    Logits stay on the model's device; the rest is on the CPU, where patch decisions are made."""

    logits: torch.Tensor  # [B, S, V]: logits[b, t] predicts the id after consumed position t
    entropies: torch.Tensor  # [B, S] float32: entropy-model entropy (nats) at each consumed position
    patch_starts: torch.Tensor  # [B, S] bool: whether each consumed position starts a patch
    next_start: torch.Tensor  # [B] bool: whether the position the last logits predict starts a patch
    # [B, V]: the entropy model's logits of the id that comes next, where the engine has them
    # (not in compiled or batched steps); generation reports its top candidates from them
    entropy_logits: torch.Tensor | None = None

    @property
    def next_logits(self) -> torch.Tensor:
        """[B, V]: the logits of the id that comes next."""
        return self.logits[:, -1]


@torch.no_grad()
def reference_step(model: BLT, ids: list[int], cfg: PatchingConfig
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full forward over `ids` (no cache) -> (logits [T, 260], entropies [T], starts [T + 1],
    the entropy model's logits [T, 260])."""
    dev = next(model.parameters()).device
    x = torch.tensor([ids], dtype=torch.long, device=dev)
    em_logits = model.entropy_model(x, reset_context=cfg.reset_context)
    ent = entropy_of_logits(em_logits)
    starts = patch_starts(x, ent if cfg.needs_entropies else None, cfg)
    logits = model(x, starts=starts)[0]
    return logits, ent[0], starts[0], em_logits[0]


class Engine(ABC):
    """The generation interface over `model` with patching `patch_config` (None: the model's)."""

    def __init__(self, model: BLT, patch_config: PatchingConfig | None = None) -> None:
        self.model = model
        self.patch_config = patch_config or model.config.patching

    @abstractmethod
    def prefill(self, ids: Sequence[Sequence[int]], all_logits: bool = True) -> StepOutput:
        """Start B new sequences (dropping whatever the engine held) with their first ids (BOS
        first) -> the outputs of every prompt position. With `all_logits` False the logits are
        those of the last position only ([B, 1, V]; entropies and starts still cover every
        position), which lets an engine skip work nothing else needs."""

    @abstractmethod
    def step(self, next_ids: Sequence[int]) -> StepOutput:
        """Append one id to each of the B sequences -> the outputs of that position (S = 1)."""

    def memory_bytes(self) -> int:
        """Bytes the engine keeps between calls (0 where it keeps none)."""
        return 0

    def _one(self, rows: Sequence, what: str) -> object:
        """The single row of a batch of 1; batches are designed for but not implemented yet."""
        if len(rows) != 1:
            raise NotImplementedError(f"{type(self).__name__}.{what}: batches of {len(rows)} sequences are not "
                                      "implemented yet; pass one sequence")
        return rows[0]


class CachedEngine(Engine):
    """Exact incremental generation: an `IncrementalState` for one sequence, a `BatchedState`
    for B > 1 sequences stepped together."""

    def __init__(self, model: BLT, patch_config: PatchingConfig | None = None, compile: bool = False) -> None:
        super().__init__(model, patch_config)
        self.states: list[IncrementalState] = []
        self.batch: BatchedState | None = None
        # compile: single-sequence steps through compiled graphs (compiled.py); `notice` says
        # in one line why not where the compiler is unavailable (steps stay eager)
        self.compiled, self.notice = compile_step(model) if compile else (None, None)

    def prefill(self, ids: Sequence[Sequence[int]], all_logits: bool = True) -> StepOutput:
        self.states, self.batch = [], None
        if len(ids) > 1:
            lengths = {len(row) for row in ids}
            if len(lengths) != 1 or 0 in lengths:
                raise ValueError(f"ids: a batch of {len(ids)} prompts must have one length (they advance "
                                 f"together), got lengths {sorted(len(row) for row in ids)}")
            self.batch = BatchedState(self.model, self.patch_config, len(ids))
            return _last_logits(_cat_outputs([self._step_batch(list(col)) for col in zip(*ids)]), all_logits)
        row = list(self._one(ids, "prefill"))
        self.states = [IncrementalState(self.model, self.patch_config)]
        self.states[0].compiled = self.compiled
        return self._feed(row, all_logits)

    def step(self, next_ids: Sequence[int]) -> StepOutput:
        if self.batch is not None:
            return self._step_batch([int(i) for i in next_ids])
        if not self.states:
            raise RuntimeError("CachedEngine.step: call prefill first")
        if len(next_ids) != 1:
            raise ValueError(f"next_ids: the engine was prefilled with 1 sequence, got {len(next_ids)} ids")
        return self._feed([int(next_ids[0])])

    def _step_batch(self, ids: list[int]) -> StepOutput:
        batch = self.batch
        first = torch.tensor(batch.next_start, dtype=torch.bool)[:, None]  # decided by the bytes before
        logits, H, nxt = batch.step(ids)
        return StepOutput(logits[:, None], torch.tensor(H, dtype=torch.float32)[:, None], first,
                          torch.tensor(nxt, dtype=torch.bool))

    def _feed(self, ids: list[int], all_logits: bool = True) -> StepOutput:
        state = self.states[0]
        first_start = state.next_start  # decided by the bytes before these
        logits, H, next_starts = state.feed(ids, all_logits)
        starts = torch.tensor([[first_start, *next_starts[:-1]]], dtype=torch.bool)
        em = state.last_entropy_logits
        return StepOutput(logits[None], torch.tensor([H], dtype=torch.float32), starts,
                          torch.tensor([next_starts[-1]], dtype=torch.bool), None if em is None else em[None])

    def memory_bytes(self) -> int:
        return sum(s.memory_bytes() for s in self.states) + (self.batch.memory_bytes() if self.batch else 0)


def _last_logits(out: StepOutput, all_logits: bool) -> StepOutput:
    """`out` with only its last position's logits unless all are wanted."""
    if not all_logits:
        out.logits = out.logits[:, -1:]
    return out


def _cat_outputs(outs: list[StepOutput]) -> StepOutput:
    """One output for consecutive steps (positions concatenated)."""
    return StepOutput(torch.cat([o.logits for o in outs], 1), torch.cat([o.entropies for o in outs], 1),
                      torch.cat([o.patch_starts for o in outs], 1), outs[-1].next_start)


class ReferenceEngine(Engine):
    """No cache: a full forward over each whole sequence at every call."""

    def __init__(self, model: BLT, patch_config: PatchingConfig | None = None) -> None:
        super().__init__(model, patch_config)
        self.ids: list[int] = []

    def prefill(self, ids: Sequence[Sequence[int]], all_logits: bool = True) -> StepOutput:
        self.ids = list(self._one(ids, "prefill"))
        return _last_logits(self._run(len(self.ids)), all_logits)

    def step(self, next_ids: Sequence[int]) -> StepOutput:
        if not self.ids:
            raise RuntimeError("ReferenceEngine.step: call prefill first")
        self.ids.append(int(self._one(next_ids, "step")))
        return self._run(1)

    def _run(self, S: int) -> StepOutput:
        """Outputs of the last S positions of a full forward."""
        logits, ent, starts, em_logits = reference_step(self.model, self.ids, self.patch_config)
        T = len(self.ids)
        ent, starts = ent.float().cpu(), starts.cpu()
        return StepOutput(logits[None, T - S:], ent[None, T - S:], starts[None, T - S:T], starts[T:],
                          em_logits[None, -1])


class CompiledEngine(CachedEngine):
    """CachedEngine whose per-byte steps run through compiled graphs (compiled.py): the same
    numbers within 1e-4. The first step compiles (tens of seconds on a small CPU, less when
    inductor's on-disk cache has the graphs); where the compiler is unavailable it steps
    eagerly and `notice` says why."""

    def __init__(self, model: BLT, patch_config: PatchingConfig | None = None) -> None:
        super().__init__(model, patch_config, compile=True)


ENGINES: dict[str, type[Engine]] = {"cached": CachedEngine, "compiled": CompiledEngine, "reference": ReferenceEngine}


def make_engine(model: BLT, engine: str | Engine = "cached", patch_config: PatchingConfig | None = None) -> Engine:
    """An engine by name ("cached", "compiled" or "reference"), or `engine` itself when it is one already
    (then it carries its own patching, and `patch_config` must be None)."""
    if isinstance(engine, Engine):
        if engine.model is not model:
            raise ValueError("engine: this engine runs a different model than the one given")
        if patch_config is not None:
            raise ValueError("patch_config: an engine instance carries its own; pass it to the engine")
        return engine
    if not (isinstance(engine, str) and engine in ENGINES):
        raise ValueError(f"engine: must be one of {', '.join(ENGINES)} or an Engine, got {engine!r}")
    return ENGINES[engine](model, patch_config)
