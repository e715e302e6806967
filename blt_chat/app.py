"""The blt-chat Textual app: chat with a byte-level model and watch its patches form.

The app owns what outlives a screen: the settings (validated and saved here, whoever changed
them) and the model service (loaded in a thread worker, handed to the chat screen). The chat
itself is `screens.chat.ChatScreen`, the default screen."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App
from textual.command import CommandListItem, CommandPalette, SimpleProvider
from textual.notifications import SeverityLevel
from textual.theme import ThemeProvider
from textual.widget import AwaitMount
from textual.widgets import HelpPanel
from textual.worker import Worker, WorkerState

from .files import write_text_or_report
from .messages import (
    ConversationDeleted,
    ConversationRenamed,
    LoadRequested,
    RegenerateRequested,
    SettingChanged,
)
from .screens.chat import FLUSH_HZ, ChatScreen
from .screens.closing import close
from .screens.model_picker import ModelPicker
from .screens.settings import SettingsScreen
from .service import ModelService
from .settings import NUMERIC_FIELDS, Settings, load_settings, settings_path, settings_text
from .widgets.commands import SafeCommandPalette
from .widgets.key_views import QuietHelpPanel

LOAD_GROUP = "load"
GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python: 700)


class BLTChatApp(App):
    """Chat with a Byte Latent Transformer."""

    TITLE = "blt-chat"
    # Textual reads a screen's CSS_PATH when the screen is pushed, never for the default screen:
    # the chat's is read with the app's (it was silently not applied before)
    CSS_PATH = ["app.tcss", "widgets/widgets.tcss", "screens/chat.tcss"]

    def __init__(self, model_dir: str | None = None, *, service: ModelService | None = None,
                 settings: Settings | None = None, clock: Callable[[], float] = time.monotonic,
                 flush_hz: float = FLUSH_HZ, save: bool = True) -> None:
        super().__init__()
        self.model_dir = model_dir
        self.save_enabled = save
        self.startup_messages: list[str] = []
        if settings is None:
            settings, msg = load_settings()
            if msg:
                self.startup_messages.append(msg)
        self.settings = settings
        self.service: ModelService | None = service
        self.notices: list[str] = []  # every toast's text, and the errors apart (tests read them)
        self.errors: list[str] = []
        self._started = False  # on_mount has applied the settings (theme changes are the user's)
        self.chat = ChatScreen(settings, clock=clock, flush_hz=flush_hz)

    def get_default_screen(self) -> ChatScreen:
        return self.chat

    @property
    def loading_model(self) -> bool:
        return self.chat.loading

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every toast is plain text: messages carry paths, model output and exception text,
        where "[" would otherwise be read as markup (and "[/]" would end the app)."""
        self.notices.append(message)
        if severity == "error":
            self.errors.append(message)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def on_mount(self) -> None:
        # Textual's rendering allocates many small containers (each line strip carries its own
        # caches); at Python's default thresholds a fifth of the UI thread's time under fast
        # typing went to the collector rescanning them. Fewer young collections while the app
        # runs; the process's own thresholds come back on exit.
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *self._gc_threshold[1:])
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
        self._started = True
        for msg in self.startup_messages:
            self.notify(msg, severity="warning", timeout=12)
        if self.service is None:
            self.chat.loading = True
            self._startup_worker()
        else:
            self.chat.set_service(self.service)

    def on_unmount(self) -> None:
        if hasattr(self, "_gc_threshold"):
            gc.set_threshold(*self._gc_threshold)

    async def action_quit(self) -> None:
        self.chat.save_conversation()  # the last second of a streaming answer too
        await super().action_quit()

    def _on_key(self, event: events.Key) -> None:
        # keys typed after a quit began (fast typing, a paste) find no screen: Textual 8.2.8's
        # App._on_key would raise ScreenStackError on the way out (found by the fuzz test).
        # Textual calls App._on_key itself after this one unless the default is prevented.
        if not self._screen_stack:
            event.prevent_default()

    # every palette the app opens is the SafeCommandPalette (the system commands "Theme" and
    # "Keys" open palettes of their own)
    def action_command_palette(self) -> None:
        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(SafeCommandPalette(id="--command-palette"))

    def action_show_help_panel(self) -> None:
        """The palette's "Keys": Textual's keys panel, rebuilt only when the keys change."""
        if not self.screen.query(HelpPanel):
            self.screen.mount(QuietHelpPanel())

    def search_commands(self, commands: Sequence[CommandListItem],
                        placeholder: str = "Search for commands…") -> AwaitMount:
        return self.push_screen(SafeCommandPalette(
            providers=[SimpleProvider(self.screen, commands)], placeholder=placeholder))

    def search_themes(self) -> None:
        self.push_screen(SafeCommandPalette(providers=[ThemeProvider], placeholder="Search for themes…"))

    def watch_theme(self, theme: str) -> None:
        self.chat.apply_display_options()
        if self._started and theme != self.settings.theme:  # chosen in the palette's theme list
            self.set_setting("theme", theme)

    # ------------------------------------------------------------------ settings
    @on(SettingChanged)
    def _setting_changed(self, event: SettingChanged) -> None:
        self.set_setting(event.name, event.value)

    @on(RegenerateRequested)
    def _regenerate_requested(self) -> None:
        self.chat.action_regenerate()

    def set_setting(self, name: str, value: Any) -> bool:
        """Apply and save one setting if the whole settings object stays valid."""
        old = getattr(self.settings, name)
        setattr(self.settings, name, value)
        try:
            self.settings.validate()
            if self.service is not None:
                self.service.patch_config(self.settings)
        except (ValueError, TypeError) as e:
            setattr(self.settings, name, old)
            self.notify(f"Setting not applied: {e}", severity="error")
            if isinstance(self.screen, SettingsScreen) and name in NUMERIC_FIELDS:
                self.screen.show_error(name, f"✗ {e}")
            return False
        self.save()
        if name == "theme" and value in self.available_themes:
            self.theme = value
        elif name == "device" and self.service is not None:
            self._move_worker(value)
        self.chat.setting_applied(name)
        return True

    def save(self) -> None:
        if self.save_enabled:
            write_text_or_report(self, settings_path(), settings_text(self.settings), "settings")

    # ------------------------------------------------------------------ conversations
    # the conversations screen asks; the chat screen holds the conversation that may be the one
    @on(ConversationRenamed)
    def _conversation_renamed(self, event: ConversationRenamed) -> None:
        self.chat.rename_conversation(event.path, event.title)

    @on(ConversationDeleted)
    def _conversation_deleted(self, event: ConversationDeleted) -> None:
        self.chat.delete_conversation(event.path)

    # ------------------------------------------------------------------ loading models
    @work(thread=True, exclusive=True, group=LOAD_GROUP, exit_on_error=False)
    def _startup_worker(self) -> None:
        try:
            svc, notes = ModelService.startup(self.model_dir, self.settings)
        except Exception as e:  # the last resort below random weights failed: still no crash
            notes = [f"Could not start a model: {type(e).__name__}: {e}"]
            svc = ModelService.random(device="cpu")
        svc.model_record()  # hashes the weights here, not on the first answer in the UI thread
        self.call_from_thread(self._startup_done, svc, notes)

    def _startup_done(self, svc: ModelService, notes: list[str]) -> None:
        for n in notes:
            self.notify(n, severity="warning", timeout=12)
        self._use(svc)

    def _use(self, svc: ModelService) -> None:
        self.service = svc
        if svc.path is not None:
            self.settings.add_recent(str(svc.path))
            self.save()
        self.chat.set_service(svc)

    @on(LoadRequested)
    def _load_requested(self, event: LoadRequested) -> None:
        self.load_model(event.path)

    def load_model(self, path: Path) -> None:
        if self.chat.generating:
            self.chat.action_stop()
        self.chat.loading = True
        self.notify(f"Loading {path} …", timeout=3)
        self._load_worker(Path(path), self.settings.device)

    @work(thread=True, exclusive=True, group=LOAD_GROUP, exit_on_error=False)
    def _load_worker(self, path: Path, device: str) -> None:
        try:
            svc = ModelService.load(path, device)
        except Exception as e:  # ModelLoadError, or anything else the loader raised
            self.call_from_thread(self._load_failed, path, str(e) or type(e).__name__)
            return
        svc.model_record()  # hashes the weights here, not on the first answer in the UI thread
        self.call_from_thread(self._load_done, svc)

    def _load_failed(self, path: Path | None, message: str) -> None:
        self.chat.loading = False
        if self.service is None:  # nothing loaded yet: fall back as at startup
            self.model_dir = None
            self.chat.loading = True
            self._startup_worker()
            return
        where = f"load {path}" if path is not None else "load the model"
        self.notify(f"Could not {where}: {message} — keeping {self.service.label}", severity="error",
                    timeout=10)
        if isinstance(self.screen, ModelPicker):
            self.screen.set_status(f"✗ {message}", error=True)

    def _load_done(self, svc: ModelService) -> None:
        self.chat.loading = False
        if isinstance(self.screen, ModelPicker):
            close(self.screen)
        self._use(svc)
        self.notify(f"Loaded {svc.label} ({svc.params_text} params) on {svc.device}", title="Model")
        if svc.note:
            self.notify(svc.note, severity="warning")

    @work(thread=True, exclusive=True, group=LOAD_GROUP, exit_on_error=False)
    def _move_worker(self, device: str) -> None:
        svc = self.service
        if svc is None:
            return
        try:
            note = svc.move_to(device)
        except Exception as e:
            self.call_from_thread(self.notify, f"Could not move the model to {device}: {e}",
                                  severity="error")
            return
        self.call_from_thread(self._moved, svc, note)

    def _moved(self, svc: ModelService, note: str | None) -> None:
        if note:
            self.notify(note, severity="warning")
        self.chat.set_service(svc)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Backstop: a loading worker that died anyway must not leave the app "loading"."""
        if event.state == WorkerState.ERROR and event.worker.group == LOAD_GROUP:
            err = event.worker.error
            self._load_failed(None, f"{type(err).__name__}: {err}")
