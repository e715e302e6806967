"""Settings as a modal screen: patching, sampling, device, template, theme and display.

Text fields are applied on commit only (Enter, or leaving the field, or closing the screen),
never per keystroke, so a half-typed number never reaches settings.json. While typing, an
invalid entry is shown in red with the reason; committing it is refused and the setting keeps
its last valid value. Committed values are posted as `SettingChanged`; the app validates the
whole settings object again before saving."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select, Static, Switch

from ..keys import SETTINGS_KEYS, bindings, key_hint
from ..messages import RegenerateRequested, SettingChanged
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
    check_field,
)
from ..widgets.error_line import ErrorLine
from .closing import close

PATCH_FIELDS = ("threshold", "monotonic_threshold", "stride", "min_patch_size", "max_patch_size")
SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "repetition_penalty", "max_new_bytes", "seed")
CHOICE_FIELDS = ("scheme", "device", "template", "theme")
SWITCH_FIELDS = {"show_entropy": "Entropy colours", "show_patch_marks": "Patch boundary marks"}


class FieldValidator(Validator):
    """Input styling only (red when invalid); applying a value goes through check_field."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.field = name

    def validate(self, value: str) -> ValidationResult:
        _value, error = check_field(self.field, value)
        return self.failure(error) if error else self.success()


def fmt_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def numeric_input(name: str, value: Any, id: str, placeholder: str = "") -> Input:
    """An Input for a numeric setting, validated when committed (and shown while typing)."""
    return Input(value=fmt_value(value), placeholder=placeholder, validators=[FieldValidator(name)],
                 validate_on=["changed", "submitted", "blur"], id=id, compact=True)


class SettingsScreen(ModalScreen[None]):
    CSS_PATH = "settings.tcss"
    BINDINGS = bindings(SETTINGS_KEYS)

    def __init__(self, settings: Settings, config_path: str,
                 model_defaults: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.config_path = config_path
        self.model_defaults = model_defaults or {}

    def compose(self) -> ComposeResult:
        s = self.settings
        with VerticalScroll(id="settings-panel") as panel:
            panel.border_title = f"Settings · {key_hint(SETTINGS_KEYS)}"
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
            yield Select([(d, d) for d in DEVICES], value=s.device, allow_blank=False, id="set-device",
                         compact=True)
            yield Label("Prompt template", classes="field-label")
            yield Select([(TEMPLATE_LABELS[t], t) for t in TEMPLATES], value=s.template,
                         allow_blank=False, id="set-template", compact=True)
            yield Label("Theme", classes="field-label")
            themes = list(THEMES) + ([s.theme] if s.theme not in THEMES else [])
            yield Select([(Text(t), t) for t in themes], value=s.theme, allow_blank=False,
                         id="set-theme", compact=True)
            for name, label in SWITCH_FIELDS.items():
                yield Horizontal(Switch(value=getattr(s, name), id=f"set-{name}"), Label(label),
                                 classes="switch-row")
            yield Static(Text(f"Saved to {self.config_path}"), id="config-path")

    def _placeholder(self, name: str) -> str:
        default = self.model_defaults.get(name)
        if name == "seed":
            return "random"
        if NUMERIC_FIELDS[name][3]:
            return f"model default: {fmt_value(default) if default is not None else 'none'}"
        return ""

    def _field(self, name: str) -> ComposeResult:
        yield Label(FIELD_LABELS[name], classes="field-label")
        yield numeric_input(name, getattr(self.settings, name), f"set-{name}", self._placeholder(name))
        yield ErrorLine(classes="error", id=f"err-{name}")

    def on_screen_resume(self) -> None:
        # the screen is kept between openings (installed): show the settings as they are now,
        # which F8 or the palette may have changed meanwhile
        self.show_values()
        self.query_one("#set-scheme").focus()

    def show_values(self) -> None:
        s = self.settings
        for name in NUMERIC_FIELDS:
            self.query_one(f"#set-{name}", Input).value = fmt_value(getattr(s, name))
            self.show_error(name, "")
        for name in CHOICE_FIELDS:
            select = self.query_one(f"#set-{name}", Select)
            if name != "theme" or s.theme in [v for _label, v in select._options]:
                select.value = getattr(s, name)
        for name in SWITCH_FIELDS:
            self.query_one(f"#set-{name}", Switch).value = getattr(s, name)
        for name in PATCH_FIELDS:
            self.query_one(f"#set-{name}", Input).placeholder = self._placeholder(name)

    # ---------------------------------------------------------- events (never raise)
    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        name = (event.input.id or "")[4:]
        if name in NUMERIC_FIELDS:
            _value, error = check_field(name, event.value)
            self.show_error(name, f"✗ {error} — not applied" if error else "")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.commit(event.input)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        event.stop()
        self.commit(event.input)

    def commit(self, inp: Input) -> None:
        """Apply the field's text if it is a complete valid value; otherwise keep the setting."""
        name = (inp.id or "")[4:]
        if name not in NUMERIC_FIELDS or not self.is_attached:
            return
        value, error = check_field(name, inp.value)
        if error:
            self.show_error(name, f"✗ {error} — not applied")
            return
        self.show_error(name, "")
        if value != getattr(self.settings, name):
            self.app.post_message(SettingChanged(name, value))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        name = (event.select.id or "")[4:]
        if name in CHOICE_FIELDS and event.value is not Select.NULL \
                and event.value != getattr(self.settings, name):
            self.app.post_message(SettingChanged(name, event.value))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        name = (event.switch.id or "")[4:]
        if name in SWITCH_FIELDS and event.value != getattr(self.settings, name):
            self.app.post_message(SettingChanged(name, event.value))

    def show_error(self, name: str, text: str) -> None:
        self.query_one(f"#err-{name}", ErrorLine).show(text)

    def field_error(self, name: str) -> str:
        """The error text shown under a field ('' when valid); used by tests."""
        return self.query_one(f"#err-{name}", ErrorLine).text

    def action_close(self) -> None:
        # the focused field's text counts as committed when the screen closes
        if isinstance(self.focused, Input):
            self.commit(self.focused)
        close(self)

    def action_regenerate(self) -> None:
        """Apply the focused field too, then close and regenerate the last answer with the values
        on screen; a focused field that is not valid stays open with its error instead."""
        if isinstance(self.focused, Input):
            name = (self.focused.id or "")[4:]
            self.commit(self.focused)
            if name in NUMERIC_FIELDS and self.field_error(name):
                self.notify(f"Not regenerated: {FIELD_LABELS.get(name, name)} is not valid.",
                            severity="warning")
                return
        close(self)
        self.app.post_message(RegenerateRequested())
