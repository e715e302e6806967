"""blt-chat settings: one dataclass, stored as JSON in the user's config directory.

The location is `platformdirs.user_config_path("blt-chat")`, or `$BLT_CHAT_CONFIG_DIR` when set
(tests point it at a temporary folder). Writes are atomic (temp file + `os.replace`). A file that
cannot be read is moved aside to `settings.json.corrupt-<time>` and defaults are used; the caller
gets a message to show the user.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformdirs import user_config_path, user_data_path

if TYPE_CHECKING:
    from blt_model.inference.sampling import SamplingConfig

APP_NAME = "blt-chat"
SETTINGS_FILE = "settings.json"
MAX_RECENT = 10

# Scheme names shown in the UI. "model" = the model's own patching defaults.
SCHEMES = ("model", "entropy", "monotonic", "fixed", "space")
SCHEME_LABELS = {
    "model": "model default",
    "entropy": "entropy (global threshold)",
    "monotonic": "entropy + monotonic",
    "fixed": "fixed stride",
    "space": "space",
}
DEVICES = ("auto", "cpu", "cuda", "mps")
TEMPLATES = ("chat", "raw")
TEMPLATE_LABELS = {"chat": "chat transcript (User:/Assistant:)", "raw": "raw continuation"}
THEMES = ("textual-dark", "textual-light")


def config_dir() -> Path:
    env = os.environ.get("BLT_CHAT_CONFIG_DIR")
    return Path(env) if env else user_config_path(APP_NAME)


def data_dir() -> Path:
    """Where exports go: `$BLT_CHAT_DATA_DIR`, else beside the config when it is overridden,
    else the platform's user data directory."""
    env = os.environ.get("BLT_CHAT_DATA_DIR")
    if env:
        return Path(env)
    if os.environ.get("BLT_CHAT_CONFIG_DIR"):
        return config_dir()
    return user_data_path(APP_NAME)


def export_dir() -> Path:
    return data_dir() / "exports"


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


# ---------------------------------------------------------------- field validation
# name -> (kind, minimum, maximum, optional). Used by Settings.validate and by the panel's Inputs.
NUMERIC_FIELDS: dict[str, tuple[type, float | None, float | None, bool]] = {
    "threshold": (float, 0.0, 20.0, True),
    "monotonic_threshold": (float, -20.0, 20.0, True),
    "stride": (int, 1, 1024, True),
    "min_patch_size": (int, 1, 1024, True),
    "max_patch_size": (int, 0, 4096, True),  # 0 = no maximum
    "temperature": (float, 0.0, 5.0, False),
    "top_k": (int, 0, 260, False),
    "top_p": (float, 0.01, 1.0, False),
    "repetition_penalty": (float, 0.5, 5.0, False),
    "max_new_bytes": (int, 1, 100_000, False),
    "seed": (int, 0, 2**32 - 1, True),
}

FIELD_LABELS = {
    "threshold": "Entropy threshold θ (nats)",
    "monotonic_threshold": "Monotonic threshold θr (nats)",
    "stride": "Fixed stride (bytes)",
    "min_patch_size": "Min patch size",
    "max_patch_size": "Max patch size (0 = none)",
    "temperature": "Temperature (0 = greedy)",
    "top_k": "Top-k (0 = off)",
    "top_p": "Top-p",
    "repetition_penalty": "Repetition penalty",
    "max_new_bytes": "Max bytes per answer",
    "seed": "Seed (empty = random)",
}


def parse_field(name: str, raw: Any) -> Any:
    """Parse and validate one numeric field from text (or a JSON value). Raises ValueError
    with a message fit to show next to the field."""
    kind, lo, hi, optional = NUMERIC_FIELDS[name]
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        if optional:
            return None
        raise ValueError("a value is required")
    if isinstance(raw, bool):
        raise ValueError("expected a number")
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            raise ValueError("expected a whole number" if kind is int else "expected a number") from None
    elif isinstance(raw, (int, float)):
        if kind is int and (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError("expected a whole number")
        value = kind(raw)
    else:
        raise ValueError("expected a number")
    if kind is float and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if lo is not None and value < lo:
        raise ValueError(f"must be ≥ {lo:g}")
    if hi is not None and value > hi:
        raise ValueError(f"must be ≤ {hi:g}")
    return value


def check_field(name: str, raw: Any) -> tuple[Any, str | None]:
    """(value, None) for a valid entry, else (None, reason). Never raises: event handlers call
    it with whatever the user has typed."""
    try:
        return parse_field(name, raw), None
    except (ValueError, TypeError, OverflowError) as e:
        return None, str(e) or "not a valid value"


@dataclass
class Settings:
    # patching (None = the model's default)
    scheme: str = "model"
    threshold: float | None = None
    monotonic_threshold: float | None = None
    stride: int | None = None
    min_patch_size: int | None = None
    max_patch_size: int | None = None
    # sampling
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    max_new_bytes: int = 512
    seed: int | None = None
    # app
    device: str = "auto"
    template: str = "raw"  # the shipped model continues text; "chat" wraps turns as User:/Assistant:
    theme: str = "textual-dark"
    show_entropy: bool = True
    show_patch_marks: bool = True
    last_model: str | None = None
    recent_models: list[str] = field(default_factory=list)
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> keys, e.g. {"regenerate": "ctrl+g"}

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        choices = {"scheme": SCHEMES, "device": DEVICES, "template": TEMPLATES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not isinstance(self.theme, str):
            raise ValueError("theme: must be a string")
        for name in NUMERIC_FIELDS:
            try:
                setattr(self, name, parse_field(name, getattr(self, name)))
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        self.sampling_config()  # the library's own checks of the sampling values
        for name in ("show_entropy", "show_patch_marks"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be true or false")
        if self.last_model is not None and not isinstance(self.last_model, str):
            raise ValueError("last_model: must be a path string or null")
        if not isinstance(self.recent_models, list) or not all(isinstance(p, str) for p in self.recent_models):
            raise ValueError("recent_models: must be a list of path strings")
        if not isinstance(self.keymap, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.keymap.items()):
            raise ValueError("keymap: must map binding ids to key strings")

    def sampling_config(self) -> SamplingConfig:
        """The sampling fields as blt_model's SamplingConfig, which validates them (the ranges
        in NUMERIC_FIELDS only bound what the settings panel accepts)."""
        from blt_model.inference.sampling import SamplingConfig  # torch: imported when first asked

        return SamplingConfig(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                              repetition_penalty=self.repetition_penalty, seed=self.seed,
                              max_new_bytes=self.max_new_bytes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Settings:
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        # unknown keys are ignored (a newer or older version may have written them)
        s = cls(**{k: v for k, v in data.items() if k in names})
        s.validate()
        return s

    def add_recent(self, path: str) -> None:
        path = str(path)
        self.recent_models = [path] + [p for p in self.recent_models if p != path]
        del self.recent_models[MAX_RECENT:]
        self.last_model = path


def load_settings(path: Path | None = None) -> tuple[Settings, str | None]:
    """Load settings. Returns (settings, message); message is set when the file was corrupt
    and has been moved aside (defaults are returned then)."""
    path = path or settings_path()
    if not path.exists():
        return Settings(), None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Settings.from_dict(data), None
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
        backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while backup.exists():
            backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
            n += 1
        try:
            os.replace(path, backup)
            where = f"backed up to {backup}"
        except OSError as move_error:
            where = f"could not back it up ({move_error})"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        return Settings(), f"Settings file {path} was unreadable ({reason}); {where}. Using defaults."


def settings_text(settings: Settings) -> str:
    return json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n"


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    # the library's atomic write, imported here: blt_model brings torch, which readers of settings need not load
    from blt_model.io.files import atomic_write_text

    path = path or settings_path()
    atomic_write_text(path, settings_text(settings))
    return path
