"""The chat screen: transcript, status bar, prompt box; generation runs in a thread worker.

What the screen shows is reactive state (generating, loading, the model, the counters): the
status bar is bound to it and the footer's bindings are refreshed from it. The model service
is handed in by the app (`set_service`); the conversation logic lives in conversation.py."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import get_current_worker

from ..conversation import Conversation, StopHoldback, Turn, stop_string
from ..keys import CHAT_KEYS, bindings
from ..messages import GenerationDone, GenerationEvent, PromptSubmitted
from ..service import ModelService
from ..settings import Settings, export_dir, settings_path
from ..store import conversations_dir
from ..widgets.commands import BLTCommands
from ..widgets.key_views import KeyFooter
from ..widgets.prompt import PromptBox
from ..widgets.status import GenStats, StatusBar, StatusInfo
from ..widgets.transcript import Transcript
from .chat_bytes import ChatBytes
from .chat_commands import ChatCommands
from .chat_history import ChatHistory
from .help import HelpScreen
from .inspector import InspectorScreen
from .model_picker import ModelPicker
from .settings import SettingsScreen

FLUSH_HZ = 25
RANDOM_BANNER = ("⚠ random weights (untrained): answers are noise, but patches, entropies and "
                 "every control work. F3 opens a trained model.")


def welcome_text(svc: ModelService) -> str:
    kind = "random weights (untrained)" if svc.random_weights else f"{svc.params_text} parameters"
    return (f"Welcome to blt-chat. Model: {svc.label} ({kind}, {svc.device}).\n"
            "Type a prompt and press Enter; the model answers byte by byte. Each byte's background "
            "is the entropy the patcher saw: blue = predictable, red = surprising (legend in the "
            "status bar). ▏ marks where a new patch starts; patches alternate in shade.\n"
            "F1 help · F2 settings · F3 open a model · F4 patch inspector · Esc stops an answer · "
            "F9 saved conversations · F10 branches.")


def scheme_name(cfg: Any) -> str:
    if cfg.scheme == "entropy":
        return "monotonic" if cfg.use_monotonic else "entropy"
    return cfg.scheme


def scheme_threshold(cfg: Any) -> float | None:
    name = scheme_name(cfg)
    return {"entropy": cfg.entropy_threshold, "monotonic": cfg.monotonic_threshold}.get(name)


class ChatScreen(ChatHistory, ChatCommands, ChatBytes, Screen):
    CSS_PATH = "chat.tcss"
    BINDINGS = bindings(CHAT_KEYS)
    COMMANDS = {BLTCommands}
    AUTO_FOCUS = "#prompt"

    generating: reactive[bool] = reactive(False, bindings=True)
    loading: reactive[bool] = reactive(False, bindings=True)
    n_turns: reactive[int] = reactive(0, bindings=True)
    model_label: reactive[str] = reactive("")
    random_weights: reactive[bool] = reactive(False)
    info: reactive[StatusInfo] = reactive(StatusInfo)

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic,
                 flush_hz: float = FLUSH_HZ) -> None:
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.flush_hz = flush_hz
        self.service: ModelService | None = None
        self.conversation = Conversation()
        self.counters = GenStats()
        self.gen_id = 0
        self.current: Turn | None = None
        self.last_settings_used: Settings | None = None
        self.last_patch_config: Any = None
        self._stop_event: threading.Event | None = None
        self._state = "idle"
        self._ready = False  # composed and mounted: widgets can be queried

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(RANDOM_BANNER, id="banner", markup=False)
        with Horizontal(id="chat-body"):
            yield Transcript(id="transcript", byte_cursor=True)
            panel = Static("", id="byte-panel")  # the byte cursor's alternatives (Ctrl+B)
            panel.border_title = "Byte · ←→ ↑↓ move · Esc leaves"
            yield panel
        yield StatusBar(id="status").data_bind(ChatScreen.model_label, ChatScreen.random_weights,
                                                ChatScreen.info)
        # a lambda: the conversation object is replaced when another one is opened
        yield PromptBox(id="prompt", history=lambda: self.conversation.user_prompts())
        yield KeyFooter()

    @property
    def transcript(self) -> Transcript:
        return self.query_one("#transcript", Transcript)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def prompt_box(self) -> PromptBox:
        return self.query_one("#prompt", PromptBox)

    @property
    def turns(self) -> list[Turn]:
        return self.conversation.turns

    def on_mount(self) -> None:
        self._ready = True
        self.apply_display_options()
        self.set_interval(1 / self.flush_hz, self._tick)
        self.watch_random_weights(self.random_weights)
        self.reopen_last()
        if self.service is not None:  # handed over before the screen was mounted
            self.set_service(self.service)

    def on_screen_resume(self) -> None:
        # whichever screen closed, typing goes to the prompt again
        self.prompt_box.focus()

    def watch_random_weights(self, value: bool) -> None:
        if self._ready:
            self.query_one("#banner").display = value

    def watch_loading(self, value: bool) -> None:
        svc = self.service
        if value or svc is None:
            self.model_label = "loading model …"
        else:
            self.model_label = f"{svc.label} · {svc.device} · {svc.params_text} params"
        self._publish()

    # ------------------------------------------------------------------ the model
    def set_service(self, svc: ModelService) -> None:
        """Show `svc` as the current model (called by the app once a model is loaded)."""
        if svc is not self.service and self.app.is_screen_installed("inspector") \
                and self.app.get_screen("inspector") not in self.app.screen_stack:
            self.app.uninstall_screen("inspector")  # it holds the previous model
        self.service = svc
        if not self._ready:
            return
        self.loading = False
        self.watch_loading(False)  # the label, even when `loading` was already False
        self.random_weights = svc.random_weights
        self.sub_title = svc.label + (f" — {svc.path}" if svc.path else "")
        if not self.turns:
            self.transcript.clear()
            self.show_welcome()
        else:
            self.transcript.add_info(f"Model: {svc.label} ({svc.params_text} params, {svc.device})")
        self._publish()

    def show_welcome(self) -> None:
        if self.service is not None:
            self.transcript.add_info(welcome_text(self.service))

    def model_defaults(self) -> dict[str, Any]:
        if self.service is None:
            return {}
        dp = self.service.config.patching
        return {"threshold": dp.entropy_threshold, "monotonic_threshold": dp.monotonic_threshold,
                "stride": dp.stride, "min_patch_size": dp.min_patch_size,
                "max_patch_size": dp.max_patch_size}

    def current_patch_config(self) -> Any:
        """The patching the settings describe, or None (with a toast) when they do not fit."""
        if self.service is None:
            return None
        try:
            return self.service.patch_config(self.settings)
        except ValueError as e:
            self.notify(f"Patching settings are invalid: {e}", severity="error")
            return None

    def _publish(self) -> None:
        """Hand the counters to the status bar (a new StatusInfo; equal ones repaint nothing)."""
        cfg = None
        if self.service is not None:
            try:
                cfg = self.last_patch_config if self.generating else self.service.patch_config(self.settings)
            except ValueError:
                cfg = None
        state = "loading model" if self.loading else self._state
        self.info = self.counters.snapshot(state, scheme_name(cfg) if cfg else "",
                                           scheme_threshold(cfg) if cfg else None)

    def apply_display_options(self) -> None:
        if not self._ready:
            return
        dark = self.app.current_theme.dark if self.app.current_theme else True
        self.transcript.set_options(show_entropy=self.settings.show_entropy,
                                    show_marks=self.settings.show_patch_marks, dark=dark)

    def setting_applied(self, name: str) -> None:
        """The app saved a new value of setting `name`."""
        if name in ("show_entropy", "show_patch_marks", "theme"):
            self.apply_display_options()
        self._publish()

    # ------------------------------------------------------------------ the periodic flush
    def _tick(self) -> None:
        if self.transcript.flush() or self.generating:
            self._publish()
        if self.generating:
            self.save_while_streaming()

    # ------------------------------------------------------------------ sending
    @on(PromptSubmitted)
    def _submitted(self, event: PromptSubmitted) -> None:
        self.send(event.text)

    def send(self, text: str) -> bool:
        if not text.strip():
            return False
        if self.generating:
            self.notify("Still generating — press Esc to stop first.", severity="warning")
            return False
        if self.service is None or self.loading:
            self.notify("The model is still loading.", severity="warning")
            return False
        self.prompt_box.clear()
        if not self.turns:
            self.transcript.clear()  # the welcome goes once the conversation starts
        self.add_prompt(text)
        self.transcript.follow_stream()
        self._start_generation()
        return True

    def _start_generation(self) -> None:
        svc = self.service
        assert svc is not None
        cfg = self.current_patch_config()
        if cfg is None:
            return
        prompt = self.conversation.build_prompt(self.settings.template)
        seen = svc.prompt_bytes_seen(len(prompt))
        cut_note = (f"prompt cut: the model saw the last {seen} of {len(prompt)} prompt bytes "
                    f"(its context is {svc.config.max_position_embeddings} bytes)"
                    if seen < len(prompt) else "")
        settings = dataclasses.replace(self.settings, recent_models=list(self.settings.recent_models),
                                       keymap=dict(self.settings.keymap))
        self.last_settings_used = settings
        self.last_patch_config = cfg
        self.gen_id += 1
        self.current = self.conversation.begin_answer()
        self.current.note = cut_note
        self.n_turns = len(self.turns)
        self.counters.reset(self.clock())
        self._state = "generating"
        if cut_note:
            self.transcript.add_info(f"⚠ {cut_note}")
        self.transcript.begin_answer(self.answer_started(self.current, svc, settings, cfg))
        self.transcript.follow_stream()
        self._stop_event = threading.Event()
        self.generating = True
        self._publish()
        self._generate(self.gen_id, prompt, settings, cfg, self._stop_event, svc)

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _generate(self, gen_id: int, prompt: bytes, settings: Settings, cfg: Any,
                  stop_event: threading.Event, svc: ModelService) -> None:
        worker = get_current_worker()
        reason, error = "max bytes", None
        holdback = StopHoldback(stop_string(settings.template))
        post = self.post_message
        try:
            for ev in svc.generate(prompt, settings, stop_event, cfg):
                if worker.is_cancelled or stop_event.is_set():
                    reason = "stopped"
                    break
                if ev.byte is None:
                    reason = "end of text"
                    break
                for shown in holdback.push(ev):
                    post(GenerationEvent(gen_id, shown))
                if holdback.done:
                    reason = "end of turn"
                    break
            else:
                if worker.is_cancelled or stop_event.is_set():
                    reason = "stopped"
            if reason != "stopped":
                for ev in holdback.release():
                    post(GenerationEvent(gen_id, ev))
        except Exception as e:  # reported in the app, never a crash
            reason, error = "error", f"{type(e).__name__}: {e}"
        post(GenerationDone(gen_id, reason, error))

    def on_generation_event(self, message: GenerationEvent) -> None:
        if message.gen_id != self.gen_id or not self.generating or self.current is None:
            return  # stale: from a stopped or replaced generation
        ev = message.event
        self.current.data.append(ev.byte)
        self.current.records.append(ev)
        self.transcript.feed(ev)
        self.counters.add(ev.entropy, ev.patch_start, self.clock())

    def on_generation_done(self, message: GenerationDone) -> None:
        if message.gen_id != self.gen_id or not self.generating:
            return
        if message.error:
            self.notify(f"Generation failed: {message.error}", severity="error", timeout=10)
        self.finish(message.reason)

    def finish(self, reason: str) -> None:
        self.generating = False
        self._state = reason
        st = self.counters
        note = (f"■ {reason} · {st.bytes} bytes · {st.patches} patches · "
                f"{st.mean_patch:.2f} B/patch · {st.rate:.1f} B/s")
        if self.current is not None:
            if self.current.note:
                note += f" · {self.current.note}"
            self.current.note = note
        self.transcript.end_answer(note)
        self._publish()
        self.answer_finished(self.current, reason)

    # ------------------------------------------------------------------ bindings' state
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None = shown dimmed (every F-key stays in the footer), True = available
        if action == "regenerate":
            return None if self.generating or self.loading or not self.n_turns else True
        if action in ("copy_answer", "export"):
            return True if self.n_turns else None
        if action in ("inspector", "open_model"):
            return None if self.loading else True
        return True

    # ------------------------------------------------------------------ actions
    def action_stop(self) -> None:
        if self.leave_byte_cursor():  # Esc leaves the byte cursor first, even while generating
            return
        if not self.generating:
            if self.cancel_edit():  # Esc also leaves the editing of an earlier prompt
                return
            raise SkipAction()
        if self._stop_event is not None:
            self._stop_event.set()
        self.workers.cancel_group(self, "generate")
        self.finish("stopped")

    # Help, settings and the inspector are built once and kept (installed screens): opening
    # one again costs a screen switch, not a new set of widgets, and the inspector keeps its text.
    def _push_kept(self, name: str, make: Callable[[], Screen]) -> None:
        if not self.app.is_screen_installed(name):
            self.app.install_screen(make(), name)
        self.app.push_screen(name)

    def action_help(self) -> None:
        self._push_kept("help", lambda: HelpScreen(str(settings_path()), str(export_dir()),
                                                   str(conversations_dir())))

    def action_settings(self) -> None:
        defaults = self.model_defaults()
        self._push_kept("settings", lambda: SettingsScreen(self.settings, str(settings_path()), defaults))
        screen = self.app.get_screen("settings")
        assert isinstance(screen, SettingsScreen)
        screen.model_defaults = defaults

    def action_open_model(self) -> None:
        svc = self.service
        current = str(svc.path) if svc and svc.path else (svc.label if svc else None)
        self.app.push_screen(ModelPicker(Path.cwd(), list(self.settings.recent_models), current))

    def action_inspector(self, text: str | None = None) -> None:
        if self.service is None or self.loading:
            self.notify("The model is still loading.", severity="warning")
            return
        cfg = self.current_patch_config()
        if cfg is None:
            return
        values = {"threshold": cfg.entropy_threshold, "monotonic_threshold": cfg.monotonic_threshold,
                  "stride": cfg.stride, "min_patch_size": cfg.min_patch_size,
                  "max_patch_size": cfg.max_patch_size}
        dark = self.app.current_theme.dark if self.app.current_theme else True
        svc = self.service
        self._push_kept("inspector", lambda: InspectorScreen(
            svc, text=text, scheme=scheme_name(cfg), values=values,
            last_answer=self.conversation.last_answer, dark=dark))
        screen = self.app.get_screen("inspector")
        if text is not None and isinstance(screen, InspectorScreen) and screen.is_mounted:
            screen.inspect_text(text)

    def action_inspect_last(self) -> None:
        data = self.conversation.last_answer()
        if not data:
            self.notify("No answer yet.", severity="warning")
            return
        self.action_inspector(data.decode("utf-8", errors="replace"))

    def action_regenerate(self) -> None:
        if self.generating or self.service is None or self.loading:
            return
        if not self.conversation.drop_answers():
            self.notify("Nothing to regenerate yet.", severity="warning")
            return
        self.rebuild_transcript()
        self._start_generation()

    def action_clear(self) -> None:
        """Ctrl+L: a new conversation; the current one stays saved (F9 lists it)."""
        self.new_conversation()
