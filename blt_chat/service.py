"""The one module of blt_chat that talks to blt_model: loading, devices, generation, inspection.

Everything here is plain Python (no Textual). Generation and analysis take `self.lock`, because
an exclusive worker restart can leave the previous thread running for a moment, and they enter
`torch.inference_mode()` in the calling thread (grad mode is thread-local).
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

import blt_model
from blt_model import BLT, BLTConfig, PatchingConfig, patch_starts
from blt_model.ids import encode
from blt_model.inference.generation import prompt_bytes_kept
from blt_model.inference.threads import use_thread_policy
from blt_model.io.model_dir import is_model_dir, model_dir_problem  # noqa: F401 (the app's check is the library's)
from blt_model.io.shipped import SHIPPED_MODEL_NAME, shipped_model_path

from .alternatives import TOP_K
from .conversation import StoredTop
from .settings import Settings

RANDOM_LABEL = "random weights (untrained)"
DEFAULT_MODEL_NAME = SHIPPED_MODEL_NAME
INSPECT_MAX_BYTES = 64 * 1024
_CHUNK = 2048


class _Stopped(Exception):
    """Raised from a progress callback to stop a long computation."""


class ModelLoadError(Exception):
    """A model could not be loaded; the message is fit to show the user."""


def find_shipped_model() -> Path | None:
    """The trained model shipped with the package (assets/models/), if installed."""
    return shipped_model_path(DEFAULT_MODEL_NAME)


def resolve_device(preference: str) -> tuple[str, str | None]:
    """'auto'|'cpu'|'cuda'|'mps' -> (device, note). The note explains a fallback."""
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if preference == "auto":
        return ("cuda" if cuda else "mps" if mps else "cpu"), None
    if preference == "cuda" and not cuda:
        return "cpu", "CUDA is not available here; using the CPU"
    if preference == "mps" and not mps:
        return "cpu", "MPS is not available here; using the CPU"
    if preference not in ("cpu", "cuda", "mps"):
        return "cpu", f"unknown device {preference!r}; using the CPU"
    return preference, None


def limit_cpu_threads() -> None:
    """The library's thread policy (blt_model/inference/threads.py): OMP_NUM_THREADS wins, else
    the physical cores less one, so torch's threads leave the UI a core."""
    use_thread_policy()


def tiny_random_config() -> BLTConfig:
    return BLTConfig.preset("tiny")


def format_params(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return str(n)


# ---------------------------------------------------------------- inspection results
@dataclass
class Analysis:
    """Entropies of a text, computed once; re-patched many times."""

    data: bytes
    ids: torch.Tensor  # Long[1, T] (BOS + bytes), CPU
    entropies: torch.Tensor  # Float[1, T], CPU; entropies[0, t] is H_t (predicts position t+1)
    truncated: bool = False

    @property
    def byte_entropies(self) -> list[float]:
        """For each byte (position s = i + 1) the entropy that decided its patch start: H_{s-1}."""
        return self.entropies[0, : len(self.data)].tolist()


@dataclass
class Patching:
    starts: list[bool]  # per byte
    patch_of: list[int]  # per byte (patch 0 is BOS, so bytes start at patch 1)
    entropies: list[float]  # per byte (deciding entropy)
    patches: list[dict] = field(default_factory=list)  # index, start, length, mean_entropy
    config: PatchingConfig | None = None

    @property
    def n_patches(self) -> int:
        return len(self.patches)

    @property
    def mean_patch_size(self) -> float:
        return len(self.starts) / len(self.patches) if self.patches else 0.0


# ---------------------------------------------------------------- the service
class ModelService:
    def __init__(self, model: BLT, *, name: str, path: Path | None, device: str,
                 random_weights: bool = False, note: str | None = None) -> None:
        self.model = model
        self.name = name
        self.path = path
        self.device = device
        self.random_weights = random_weights
        self.note = note
        self.lock = threading.Lock()
        self.params = model.num_parameters()
        if device == "cpu":
            limit_cpu_threads()

    # ---------------------------------------------------------- construction
    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> ModelService:
        path = Path(path).expanduser()
        dev, note = resolve_device(device)
        if not path.exists():
            raise ModelLoadError(f"{path}: no such directory")
        if not path.is_dir():
            raise ModelLoadError(f"{path}: not a directory (choose the folder holding config.json)")
        try:
            model = blt_model.load_model(path, device=dev)
        except blt_model.CheckpointError as e:
            raise ModelLoadError(str(e)) from None
        except MemoryError:
            raise ModelLoadError(f"{path}: not enough memory to load this model") from None
        except Exception as e:  # a broken model is the user's file, never a crash of the app
            raise ModelLoadError(f"{path}: {type(e).__name__}: {e}") from None
        model.eval()
        return cls(model, name=path.name or str(path), path=path.resolve(), device=dev, note=note)

    @classmethod
    def random(cls, config: BLTConfig | None = None, device: str = "auto", seed: int = 0) -> ModelService:
        dev, note = resolve_device(device)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            model = BLT(config or tiny_random_config())
        finally:
            torch.random.set_rng_state(gen_state)
        model.to(dev).eval()
        return cls(model, name=RANDOM_LABEL, path=None, device=dev, random_weights=True, note=note)

    @classmethod
    def startup(cls, model_dir: str | None, settings: Settings) -> tuple[ModelService, list[str]]:
        """The model to open at start: the argument, else the last one used, else the shipped
        model; random weights only when none of them loads. Returns the service and messages
        for the user (a remembered model that has gone is one of them)."""
        notes: list[str] = []
        candidates: list[Path] = []
        if model_dir:
            candidates.append(Path(model_dir))
        if settings.last_model:
            last = Path(settings.last_model)
            if is_model_dir(last):
                candidates.append(last)
            elif not model_dir:
                notes.append(f"The last model used, {last}, is no longer there.")
        shipped = find_shipped_model()
        if shipped is not None:
            candidates.append(shipped)
        tried: set[Path] = set()
        for p in candidates:
            if p.resolve() in tried:
                continue
            tried.add(p.resolve())
            try:
                svc = cls.load(p, settings.device)
            except ModelLoadError as e:
                notes.append(f"Could not load {p}: {e}")
                continue
            if svc.note:
                notes.append(svc.note)
            return svc, notes
        svc = cls.random(device=settings.device)
        if svc.note:
            notes.append(svc.note)
        notes.append("No trained model found: using a tiny model with random weights (untrained); "
                      "its output is noise. Open a model with F3.")
        return svc, notes

    # ---------------------------------------------------------- facts
    @property
    def config(self) -> BLTConfig:
        return self.model.config

    @property
    def label(self) -> str:
        return self.name

    @property
    def params_text(self) -> str:
        return format_params(self.params)

    def prompt_bytes_seen(self, n_prompt: int) -> int:
        """How many of a prompt's bytes this model sees (generation's context rule)."""
        return prompt_bytes_kept(n_prompt, self.config.max_position_embeddings)

    @functools.cached_property
    def weights_hash(self) -> str:
        """12 hex digits of SHA-256 over the weights: which model wrote an answer, even when
        its directory has been retrained in place since (computed once, without the lock:
        reading the weights while a generation runs is safe)."""
        h = hashlib.sha256()
        with torch.no_grad():
            for name, t in sorted(self.model.state_dict().items()):
                h.update(name.encode())
                h.update(t.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()[:12]

    def model_record(self) -> dict[str, str | None]:
        """What a saved answer records about the model that wrote it."""
        return {"label": self.label, "path": str(self.path) if self.path else None,
                "weights": self.weights_hash, "device": self.device}

    def move_to(self, device: str) -> str | None:
        dev, note = resolve_device(device)
        with self.lock:
            self.model.to(dev)
            self.device = dev
        return note

    def patch_config(self, s: Settings) -> PatchingConfig:
        """The model's default patching with the user's overrides applied."""
        cfg = self.config.patching
        changes: dict = {}
        if s.scheme == "entropy":
            changes.update(scheme="entropy", use_monotonic=False)
        elif s.scheme == "monotonic":
            changes.update(scheme="entropy", use_monotonic=True)
        elif s.scheme in ("fixed", "space"):
            changes.update(scheme=s.scheme)
        if s.threshold is not None:
            changes["entropy_threshold"] = float(s.threshold)
        if s.monotonic_threshold is not None:
            changes["monotonic_threshold"] = float(s.monotonic_threshold)
        if s.stride is not None:
            changes["stride"] = int(s.stride)
        if s.min_patch_size is not None:
            changes["min_patch_size"] = int(s.min_patch_size)
        if s.max_patch_size is not None:
            changes["max_patch_size"] = None if s.max_patch_size == 0 else int(s.max_patch_size)
        if changes:
            mn = changes.get("min_patch_size", cfg.min_patch_size)
            mx = changes.get("max_patch_size", cfg.max_patch_size)
            if mx is not None and mx < mn:
                changes["max_patch_size"] = mn
            cfg = cfg.replace(**changes)
        return cfg

    # ---------------------------------------------------------- generation
    def generate(self, prompt: bytes, settings: Settings, stop_event: threading.Event | None = None,
                 patch_config: PatchingConfig | None = None) -> Iterator:
        """Yield blt_model ByteEvents for a new answer, each generated byte's `top` its
        alternatives as kept (StoredTop: top 5 of both models, float16). Call from the worker
        thread."""
        from blt_model.inference.generation import generate_stream

        cfg = patch_config or self.patch_config(settings)
        with self.lock, torch.inference_mode():
            for ev in generate_stream(self.model, prompt, settings.sampling_config(), patch_config=cfg,
                                      stop_event=stop_event, alternatives=TOP_K):
                if ev.top is not None:
                    ev.top = StoredTop.of(ev.top)
                yield ev

    # ---------------------------------------------------------- inspection
    def analyze(self, data: bytes, should_stop: Callable[[], bool] = lambda: False,
                progress: Callable[[int, int], None] | None = None) -> Analysis | None:
        """Entropies for `data` (computed once, in chunks of _CHUNK positions, each with the
        entropy context before it). None when `should_stop()` turns true (checked before each
        chunk); progress(bytes done, bytes in all) after each chunk."""
        truncated = len(data) > INSPECT_MAX_BYTES
        data = data[:INSPECT_MAX_BYTES]
        ids = torch.tensor([encode(data)], dtype=torch.long)
        reset = self.config.patching.reset_context
        ctx = self.config.entropy_context_size
        T = ids.shape[1]
        out = torch.empty(1, T, dtype=torch.float32)
        with self.lock, torch.inference_mode():
            em = self.model.entropy_model
            dev = next(self.model.parameters()).device
            pos = 0
            while pos < T:
                if should_stop():
                    return None
                end = min(T, pos + _CHUNK)
                lo = max(0, pos - ctx)
                chunk = ids[:, lo:end].to(dev)
                h = em.entropies(chunk, reset_context=reset).float().cpu()
                out[:, pos:end] = h[:, pos - lo:]
                pos = end
                if progress is not None:
                    progress(end - 1, T - 1)  # position 0 is BOS: bytes done so far
        return Analysis(data=data, ids=ids, entropies=out, truncated=truncated)

    def byte_alternatives(self, analysis: Analysis, cfg: PatchingConfig, k: int = 5,
                          should_stop: Callable[[], bool] = lambda: False,
                          progress: Callable[[int, int], None] | None = None):
        """Per byte: the BLT's (patched by `cfg`) and the entropy model's top-k candidates and
        probabilities (float16), the BLT's entropy and surprisal (-log2 p of the actual byte, in
        the windows of `compute_bits_per_byte`, so their mean is its bits per byte); the entropy
        model in the windows of `analyze`. None when `should_stop()` turns true. `progress(done,
        total)` after each of the BLT's windows, in bytes (the entropy model's pass is short)."""
        from blt_model.train.evaluation import model_forward, sliding_windows

        from .alternatives import Alternatives

        n = len(analysis.data)
        parts: dict[str, list] = {"bi": [], "bp": [], "ent": [], "s": [], "ei": [], "ep": []}
        with self.lock, torch.inference_mode():
            dev = next(self.model.parameters()).device
            for window, new in sliding_windows(analysis.data, self.config.max_position_embeddings):
                if should_stop():
                    return None
                ids = torch.tensor([window], dtype=torch.long, device=dev)
                logits, _ = model_forward(self.model, ids, cfg)
                logp = torch.log_softmax(logits[0, :-1].float(), dim=-1)[-new:]  # rows predict bytes
                top = logp.topk(k, dim=-1)
                parts["bi"].append(top.indices.short().cpu())
                parts["bp"].append(top.values.exp().half().cpu())
                parts["ent"].extend((-(logp.exp() * logp).sum(-1)).cpu().tolist())
                parts["s"].extend((-logp.gather(-1, ids[0, -new:, None])[:, 0] / math.log(2)).cpu().tolist())
                if progress is not None:
                    progress(len(parts["s"]), n)
            em, ctx, reset = self.model.entropy_model, self.config.entropy_context_size, cfg.reset_context
            for pos in range(0, n, _CHUNK):  # entropy-model logits at positions 0..n-1 predict bytes 0..n-1
                if should_stop():
                    return None
                end, lo = min(n, pos + _CHUNK), max(0, pos - ctx)
                logp = torch.log_softmax(em(analysis.ids[:, lo:end].to(dev), reset_context=reset)[0].float(), -1)
                top = logp[pos - lo:].topk(k, dim=-1)
                parts["ei"].append(top.indices.short().cpu())
                parts["ep"].append(top.values.exp().half().cpu())
        return Alternatives(torch.cat(parts["bi"]), torch.cat(parts["bp"]), torch.cat(parts["ei"]),
                            torch.cat(parts["ep"]), parts["ent"], parts["s"])

    def byte_bits(self, data: bytes, should_stop: Callable[[], bool] = lambda: False,
                  progress: Callable[[int], None] | None = None) -> list[float] | None:
        """Per byte of `data`, the BLT's bits for the actual byte (-log2 p) under its own
        patching, scored as `compute_bits_per_byte` scores bytes (its windows and default
        patching), so their mean is that bits per byte. None when `should_stop()` turns true;
        progress(bytes scored so far) after each window."""
        from blt_model.train.evaluation import model_forward, sliding_windows

        bits: list[float] = []
        with self.lock, torch.inference_mode():
            dev = next(self.model.parameters()).device
            for window, new in sliding_windows(data, self.config.max_position_embeddings):
                if should_stop():
                    return None
                ids = torch.tensor([window], dtype=torch.long, device=dev)
                logits, _ = model_forward(self.model, ids, None)
                logp = torch.log_softmax(logits[0, -new - 1:-1].float(), dim=-1)  # rows predicting the new bytes
                bits.extend((-logp.gather(-1, ids[0, -new:, None])[:, 0] / math.log(2)).cpu().tolist())
                if progress is not None:
                    progress(len(bits))
        return bits

    def compressed_size(self, data: bytes, should_stop: Callable[[], bool] = lambda: False,
                        progress: Callable[[int], None] | None = None) -> tuple[int, int] | None:
        """(size, coded): the bytes `blt compress` writes for `data` with this model (the whole
        container: header, CRCs, range-coded bytes) and the range-coded bytes alone; None when
        `should_stop()` turns true. progress(bytes coded so far). CodecError (e.g. constriction
        not installed) says what to do in one line."""
        from blt_model.codec import compress
        from blt_model.codec.container import unpack

        done = 0

        def step(n: int) -> None:
            nonlocal done
            if should_stop():
                raise _Stopped
            done += n
            if progress is not None:
                progress(done)

        with self.lock, torch.inference_mode():
            try:
                blob = compress(self.model, data, progress=step)
            except _Stopped:
                return None
        return len(blob), int(unpack(blob).payload.nbytes)

    @staticmethod
    def repatch(analysis: Analysis, cfg: PatchingConfig) -> Patching:
        """Patch starts for an analysed text under `cfg`, reusing its entropies."""
        n = len(analysis.data)
        starts_t = patch_starts(analysis.ids, analysis.entropies if cfg.needs_entropies else None, cfg)
        starts = starts_t[0, 1:n + 1].tolist()
        ents = analysis.byte_entropies
        patch_of: list[int] = []
        patches: list[dict] = []
        p = 0
        for i, st in enumerate(starts):
            if st or not patches:
                p += 1
                patches.append({"index": p, "start": i, "length": 0, "_sum": 0.0, "_n": 0})
            patch_of.append(p)
            rec = patches[-1]
            rec["length"] += 1
            h = ents[i]
            if math.isfinite(h):
                rec["_sum"] += h
                rec["_n"] += 1
        for rec in patches:
            rec["mean_entropy"] = rec.pop("_sum") / rec["_n"] if rec["_n"] else float("nan")
            rec.pop("_n")
        return Patching(starts=starts, patch_of=patch_of, entropies=ents, patches=patches, config=cfg)
