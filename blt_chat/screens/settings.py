"""The settings panel: validated fields for patching, sampling, device and display.

Every field validates as the user types; an invalid value is refused (shown in red with the
reason under the field) and the setting keeps its last valid value. Valid changes are posted as
`SettingsPanel.Changed` and apply to the next generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select, Static, Switch

from ..settings import (
    DEVICES,
    FIELD_LABELS,
    NUMERIC_FIELDS,
    SCHEME_LABELS,
    SCHEMES,
    TEMPLATE_LABELS,
    TEMPLATES,
    THEMES,
    Settings,
    parse_field,
    settings_path,
)

PATCH_FIELDS = ("threshold", "monotonic_threshold", "stride", "min_patch_size", "max_patch_size")
SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "repetition_penalty", "max_new_bytes", "seed")


class FieldValidator(Validator):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.field = name

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_field(self.field, value)
        except ValueError as e:
            return self.failure(str(e))
        return self.success()


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


class SettingsPanel(VerticalScroll):
    DEFAULT_CSS = """
    SettingsPanel {
        dock: right;
        width: 46;
        background: $panel;
        border-left: wide $accent;
        padding: 0 1;
        display: none;
    }
    SettingsPanel.-open { display: block; }
    SettingsPanel .section { text-style: bold; color: $accent; margin-top: 1; border-bottom: solid $accent; }
    SettingsPanel .field-label { color: $text-muted; }
    SettingsPanel Input { width: 100%; }
    SettingsPanel Select { width: 100%; }
    SettingsPanel .error { color: $error; height: auto; display: none; }
    SettingsPanel .error.-shown { display: block; }
    SettingsPanel .switch-row { height: 3; margin-top: 1; }
    SettingsPanel .switch-row Label { padding: 1 0 0 1; }
    SettingsPanel #config-path { color: $text-muted; margin-top: 1; }
    """

    @dataclass
    class Changed(Message):
        name: str
        value: Any

    def __init__(self, settings: Settings, **kw) -> None:
        super().__init__(**kw)
        self.settings = settings
        self.border_title = "Settings (F2)"
        self._loading = False

    def compose(self) -> ComposeResult:
        s = self.settings
        yield Static("Patching", classes="section")
        yield Label("Scheme", classes="field-label")
        yield Select([(SCHEME_LABELS[k], k) for k in SCHEMES], value=s.scheme, allow_blank=False,
                     id="set-scheme", compact=True)
        for name in PATCH_FIELDS:
            yield from self._field(name)
        yield Static("Sampling", classes="section")
        for name in SAMPLING_FIELDS:
            yield from self._field(name)
        yield Static("Model and display", classes="section")
        yield Label("Device", classes="field-label")
        yield Select([(d, d) for d in DEVICES], value=s.device, allow_blank=False, id="set-device", compact=True)
        yield Label("Prompt template", classes="field-label")
        yield Select([(TEMPLATE_LABELS[t], t) for t in TEMPLATES], value=s.template, allow_blank=False,
                     id="set-template", compact=True)
        yield Label("Theme", classes="field-label")
        yield Select([(t, t) for t in THEMES] + ([(s.theme, s.theme)] if s.theme not in THEMES else []),
                     value=s.theme, allow_blank=False, id="set-theme", compact=True)
        for name, label in (("show_entropy", "Entropy colours"), ("show_patch_marks", "Patch boundary marks")):
            yield Horizontal(Switch(value=getattr(s, name), id=f"set-{name}"), Label(label),
                             classes="switch-row")
        yield Static(f"Saved to {settings_path()}", id="config-path")

    def _field(self, name: str):
        kind, _lo, _hi, optional = NUMERIC_FIELDS[name]
        yield Label(FIELD_LABELS[name], classes="field-label")
        yield Input(value=_fmt(getattr(self.settings, name)),
                    placeholder=("random" if name == "seed" else "model default") if optional else "",
                    validators=[FieldValidator(name)], validate_on=["changed", "submitted"],
                    id=f"set-{name}", type="text", compact=True)
        yield Static("", classes="error", id=f"err-{name}")

    def set_model_defaults(self, defaults: dict[str, Any]) -> None:
        """Show the model's values as placeholders of the optional fields."""
        for name, v in defaults.items():
            try:
                inp = self.query_one(f"#set-{name}", Input)
            except Exception:
                continue
            inp.placeholder = f"model default: {_fmt(v) if v is not None else 'none'}"

    def load(self, settings: Settings) -> None:
        """Show `settings` in the fields (without posting changes)."""
        self.settings = settings
        self._loading = True
        try:
            for name in NUMERIC_FIELDS:
                self.query_one(f"#set-{name}", Input).value = _fmt(getattr(settings, name))
            for name in ("scheme", "device", "template", "theme"):
                self.query_one(f"#set-{name}", Select).value = getattr(settings, name)
            for name in ("show_entropy", "show_patch_marks"):
                self.query_one(f"#set-{name}", Switch).value = getattr(settings, name)
        finally:
            self.call_after_refresh(self._done_loading)

    def _done_loading(self) -> None:
        self._loading = False

    # ---------------------------------------------------------- events
    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        inp = event.input
        if not inp.id or not inp.id.startswith("set-"):
            return
        name = inp.id[4:]
        err = self.query_one(f"#err-{name}", Static)
        result = event.validation_result
        if result is not None and not result.is_valid:
            err.update("✗ " + "; ".join(result.failure_descriptions) + " — not applied")
            err.add_class("-shown")
            return
        err.update("")
        err.remove_class("-shown")
        value = parse_field(name, inp.value)
        if not self._loading and value != getattr(self.settings, name):
            self.post_message(self.Changed(name, value))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        sel = event.select
        if not sel.id or not sel.id.startswith("set-") or event.value is Select.NULL:
            return
        name = sel.id[4:]
        if not self._loading and event.value != getattr(self.settings, name):
            self.post_message(self.Changed(name, event.value))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        name = (event.switch.id or "")[4:]
        if name and not self._loading and event.value != getattr(self.settings, name):
            self.post_message(self.Changed(name, event.value))

    def field_error(self, name: str) -> str:
        """The error text shown under a field ('' when valid); used by tests."""
        err = self.query_one(f"#err-{name}", Static)
        return str(err.render()) if err.has_class("-shown") else ""
