"""Where the model shipped with the package lives.

The repository keeps it in `assets/models/blt-tiny-en/`; installation maps `assets/` to the
package `blt_assets`, so the same lookup works from a checkout, an editable install and a
regular `pip install .`, from any working directory.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_MODEL_NAME = "blt-tiny-en"


def shipped_model_path(name: str = SHIPPED_MODEL_NAME) -> Path | None:
    """Directory of the shipped model, or None when this installation has none."""
    candidates = []
    try:
        import blt_assets  # installed package (or editable mapping)

        for base in getattr(blt_assets, "__path__", []):
            candidates.append(Path(base) / "models" / name)
    except ImportError:
        pass
    candidates.append(Path(__file__).resolve().parent.parent / "assets" / "models" / name)  # checkout
    for p in candidates:
        if (p / "config.json").is_file() and (p / "model.safetensors").is_file():
            return p
    return None
