"""The patching controls (scheme and five numbers) shared by the inspector and its compare
screen: one row, down to 80 columns. The widgets' ids are `{prefix}-scheme`, `{prefix}-threshold`, ..."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.widgets import Input, Label, Select

from ..compare import PATCH_FIELDS, values_from_config
from ..screens.settings import numeric_input

SCHEMES = [("entropy", "entropy"), ("monotonic", "monotonic"), ("fixed", "fixed"), ("space", "space")]
# short labels: six controls share one row, down to 80 columns
LABELS = {"threshold": "θ (nats)", "monotonic_threshold": "θr (nats)", "stride": "Stride",
          "min_patch_size": "Min patch", "max_patch_size": "Max patch"}


def patch_controls(prefix: str, scheme: str, values: Mapping[str, Any]) -> ComposeResult:
    with Horizontal(id=f"{prefix}-controls", classes="patch-controls"):
        with Vertical():
            yield Label("Scheme")
            yield Select(SCHEMES, value=scheme, allow_blank=False, id=f"{prefix}-scheme", compact=True)
        for name in PATCH_FIELDS:
            with Vertical():
                yield Label(LABELS[name])
                yield numeric_input(name, values.get(name), f"{prefix}-{name}",
                                    "none" if name == "max_patch_size" else "")


def read_controls(node: DOMNode, prefix: str) -> tuple[str, dict[str, str]]:
    """(scheme, text of each field) as the user has set them."""
    scheme = str(node.query_one(f"#{prefix}-scheme", Select).value)
    return scheme, {name: node.query_one(f"#{prefix}-{name}", Input).value for name in PATCH_FIELDS}


def set_controls(node: DOMNode, prefix: str, cfg) -> None:
    """Show `cfg` in the controls (each widget posts its Changed only if its value changes)."""
    scheme, values = values_from_config(cfg)
    select = node.query_one(f"#{prefix}-scheme", Select)
    if select.value != scheme:
        select.value = scheme
    for name, text in values.items():
        box = node.query_one(f"#{prefix}-{name}", Input)
        if box.value != text:
            box.value = text
