"""What a compressed stream depends on: the model (a hash of its config and weights) and the
platform that computed its probabilities (torch version, dtype, device, CPU, thread count).

Arithmetic decoding needs bit-identical probabilities on both sides. The same model on the same
platform with the same thread count gives them (CPU kernels are deterministic for a fixed thread
count); another torch version, CPU type, device or thread count may round differently, which a
decoder notices as a CRC mismatch. The model must match exactly; the platform is compared and
any difference reported before decoding starts.
"""

from __future__ import annotations

import hashlib
import json
import platform
from functools import lru_cache
from typing import Any

import torch

from ..nn.model import BLT

__all__ = ["cpu_name", "model_identity", "platform_differences", "platform_record"]


def model_identity(model: BLT) -> str:
    """SHA-256 (hex) over the model's config JSON and every weight's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(json.dumps(model.config.to_dict(), sort_keys=True).encode("utf-8"))
    with torch.no_grad():
        for name, t in sorted(model.state_dict().items()):
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
            h.update(t.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def platform_record(model: BLT, threads: int) -> dict[str, Any]:
    """The platform the probabilities are computed on, as the container records it."""
    p = next(model.parameters())
    device = str(p.device)
    if p.device.type == "cuda":
        device += f" ({torch.cuda.get_device_name(p.device)})"
    return {"torch": torch.__version__, "dtype": str(p.dtype).removeprefix("torch."), "device": device,
            "cpu": cpu_name(), "machine": platform.machine(), "threads": int(threads)}


def platform_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'name: recorded -> current' for each platform field that differs."""
    return [f"{k}: {recorded.get(k)!r} -> {current.get(k)!r}"
            for k in ("torch", "dtype", "device", "cpu", "machine", "threads") if recorded.get(k) != current.get(k)]
