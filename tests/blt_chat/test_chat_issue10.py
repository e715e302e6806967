"""Regression tests for issue 10: one (or more) per numbered defect, each failing on the old app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.color import Color as RichColor
from rich.color import ColorSystem

from blt_chat.__main__ import main
from blt_chat.app import BLTChatApp
from blt_chat.keys import CHAT_KEYS, key_display, palette_commands
from blt_chat.render import BUCKET_COLORS
from blt_chat.screens import ChatScreen, HelpScreen, InspectorScreen, ModelPicker, SettingsScreen
from blt_chat.service import ModelService
from blt_chat.settings import Settings, export_dir, settings_path

from .chat_helpers import until
from .conftest import tiny_config

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


def alive(app: BLTChatApp) -> bool:
    return app.is_running and app._exception is None


def saved() -> dict:
    return json.loads(settings_path().read_text()) if settings_path().exists() else {}


def messages(app: BLTChatApp) -> list[str]:
    return app.notices


def save_tiny(path: Path, seed: int = 4) -> Path:
    from blt_model import save_model

    save_model(ModelService.random(tiny_config(), device="cpu", seed=seed).model, path)
    return path


async def open_settings_field(pilot, name: str) -> None:
    if not isinstance(pilot.app.screen, SettingsScreen):
        await pilot.press("f2")
    pilot.app.screen.query_one(f"#set-{name}").focus()
    await pilot.pause()


# ------------------------------------------------------------------ 1 and 2: settings fields
async def test_1_fast_backspaces_in_a_field_never_crash(tiny_service):
    app = BLTChatApp(service=tiny_service, settings=Settings())
    async with app.run_test(size=SIZE) as pilot:
        await open_settings_field(pilot, "temperature")
        await pilot.press("end", "backspace", "backspace", "backspace", "backspace")
        await pilot.pause(0.1)
        assert alive(app) and app.settings.temperature == 0.8
        assert "required" in app.screen.field_error("temperature")
        await pilot.press("enter")
        await pilot.pause(0.05)
        assert alive(app) and app.settings.temperature == 0.8
        for name, junk, why in [("max_new_bytes", "9x", "whole number"),
                                ("threshold", "1e309", "finite")]:
            await open_settings_field(pilot, name)
            await pilot.press("ctrl+a", "ctrl+k", *junk, "enter")
            await pilot.pause(0.05)
            assert alive(app) and why in app.screen.field_error(name)
        assert app.settings.max_new_bytes == 512 and app.settings.threshold is None


async def test_2_intermediate_keystrokes_are_never_applied(tiny_service):
    app = BLTChatApp(service=tiny_service, settings=Settings())
    async with app.run_test(size=SIZE) as pilot:
        await open_settings_field(pilot, "max_new_bytes")
        await pilot.press("end", "backspace", "backspace", "backspace")
        await pilot.pause(0.1)
        assert app.settings.max_new_bytes == 512 and saved().get("max_new_bytes", 512) == 512
        await pilot.press("escape")  # closing commits the field: "" is refused
        await pilot.pause(0.05)
        assert isinstance(app.screen, ChatScreen)
        assert app.settings.max_new_bytes == 512 and saved().get("max_new_bytes", 512) == 512
        await open_settings_field(pilot, "max_new_bytes")
        await pilot.press("ctrl+a", "ctrl+k", "3", "0", "tab")  # leaving the field commits
        await pilot.pause(0.05)
        assert app.settings.max_new_bytes == 30 and saved()["max_new_bytes"] == 30


# ------------------------------------------------------------------ 3: writes on a read-only disk
async def test_3_unwritable_data_dir_is_a_toast_naming_the_path(tiny_service, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    monkeypatch.setenv("BLT_CHAT_DATA_DIR", str(blocker / "data"))
    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=8, seed=1))
    async with app.run_test(size=SIZE) as pilot:
        app.chat.send("hi")
        await until(pilot, lambda: not app.chat.generating)
        for key in ("f6", "f7"):
            await pilot.press(key)
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.patching is not None)
        await pilot.press("ctrl+s", "ctrl+g", "escape")
        await app.chat.run_action("screenshot_svg")  # the palette's Screenshot
        await pilot.pause(0.1)
        assert alive(app)
        errors = [e for e in app.errors if str(export_dir()) in e]
        assert len(errors) == 5, "\n".join(app.errors)  # copy, export, SVG, JSON, screenshot


async def test_3_unwritable_settings_file_is_a_toast(tiny_service, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("BLT_CHAT_CONFIG_DIR", str(blocker / "config"))
    app = BLTChatApp(service=tiny_service, settings=Settings())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f8")
        await pilot.pause(0.05)
        assert alive(app) and any(str(settings_path()) in e for e in app.errors)


# ------------------------------------------------------------------ 4: square brackets
async def test_4_brackets_in_paths_keys_and_settings_are_shown_verbatim(tiny_service, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "old[" / "]"  # the path ends in "old[/]"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text(json.dumps({"[/]": 1, "hidden_size": "[bold]"}))
    good = save_tiny(tmp_path / "run[v2]")
    settings_path().parent.mkdir(parents=True)
    settings_path().write_text(json.dumps({"scheme": "[/]"}))
    app = BLTChatApp(service=tiny_service)  # reads the bad settings file
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert any("[/]" in m for m in messages(app))  # the settings file's message
        app.load_model(bad)
        await until(pilot, lambda: not app.loading_model)
        assert alive(app) and any("old[/]" in e for e in app.errors)
        app.load_model(good)
        await until(pilot, lambda: not app.loading_model and app.service is not tiny_service)
        assert any("run[v2]" in m for m in messages(app))
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, ModelPicker) and bool(app.screen.query("#picker-recent")))
        title = str(app.screen.query_one("#picker-title").render())
        assert "run[v2]" in title
        assert any("run[v2]" in str(o.prompt) for o in app.screen.query_one("#picker-recent")._options)
        assert alive(app)


# ------------------------------------------------------------------ 5: unexpected load errors
@pytest.mark.parametrize("error", [ZeroDivisionError("division by zero"), MemoryError()])
async def test_5_any_load_exception_ends_loading_and_keeps_the_model(tiny_service, tmp_path, monkeypatch,
                                                                     error):
    import blt_model

    def broken(*a, **kw):
        raise error

    target = save_tiny(tmp_path / "m")
    monkeypatch.setattr(blt_model, "load_model", broken)
    app = BLTChatApp(service=tiny_service, settings=Settings())
    async with app.run_test(size=SIZE) as pilot:
        app.load_model(target)
        await until(pilot, lambda: not app.loading_model)
        assert app.service is tiny_service and alive(app)
        assert any(str(target) in e and "keeping" in e for e in app.errors)
        assert "loading" not in app.chat.model_label


async def test_5_load_exception_at_startup_still_ends_loading(tmp_path, monkeypatch):
    import blt_model

    def broken(*a, **kw):
        raise ZeroDivisionError("0 attention heads")

    monkeypatch.setattr(blt_model, "load_model", broken)
    monkeypatch.setattr("blt_chat.service.tiny_random_config", tiny_config)
    app = BLTChatApp(str(save_tiny(tmp_path / "m")), settings=Settings(device="cpu"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.service is not None and not app.loading_model)
        assert app.service.random_weights  # nothing trained could load
        assert any("ZeroDivisionError" in m for m in messages(app))


# ------------------------------------------------------------------ 6: model choice and banner
@pytest.mark.parametrize("kind", ["missing", "file", "empty dir"])
def test_6_cli_path_that_is_not_a_model_exits_2(tmp_path, capsys, kind, monkeypatch):
    import blt_chat.app

    monkeypatch.setattr(blt_chat.app.BLTChatApp, "run", lambda self: pytest.fail("the UI started"))
    path = tmp_path / "nonexistent"
    if kind == "file":
        path.write_text("x")
    elif kind == "empty dir":
        path.mkdir()
    assert main([str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0]


def test_6_remembered_model_gone_opens_the_shipped_model(tmp_path):
    from blt_chat.service import find_shipped_model

    shipped = find_shipped_model()
    if shipped is None:
        pytest.skip("no shipped model in this install")
    svc, notes = ModelService.startup(None, Settings(last_model=str(tmp_path / "gone"), device="cpu"))
    assert svc.path == shipped.resolve() and not svc.random_weights
    assert any("gone" in n and "no longer there" in n for n in notes)


async def test_6_banner_matches_the_loaded_model(tiny_service, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = BLTChatApp(service=tiny_service, settings=Settings())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        banner = app.chat.query_one("#banner")
        assert banner.display and "random weights" in app.chat.transcript.plain_text()
        app.load_model(save_tiny(tmp_path / "trained"))
        await until(pilot, lambda: app.service is not tiny_service and not app.loading_model)
        await pilot.pause()
        assert not banner.display
        text = app.chat.transcript.plain_text()
        assert "random weights" not in text and "trained" in text


# ------------------------------------------------------------------ 7: Esc and focus
async def test_7_esc_closes_the_screen_before_it_stops_generation(endless_service):
    app = BLTChatApp(service=endless_service, settings=Settings(max_new_bytes=100_000, seed=1))
    async with app.run_test(size=SIZE) as pilot:
        app.chat.send("go on")
        for key, screen in (("f1", HelpScreen), ("f2", SettingsScreen), ("f4", InspectorScreen)):
            await pilot.press(key)
            await until(pilot, lambda s=screen: isinstance(app.screen, s))
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, ChatScreen) and app.chat.generating, (key, app.chat.info, app.errors)
            assert app.focused is app.chat.prompt_box
        await pilot.press("escape")
        assert not app.chat.generating and app.chat.info.state == "stopped"
        await pilot.press("f2", "escape", *"abc")  # typed at once after closing the settings
        await pilot.pause()
        assert app.chat.prompt_box.text == "abc" and app.settings.threshold is None


# ------------------------------------------------------------------ 8: long prompts
async def test_8_long_prompt_answer_is_followed_and_the_cut_is_noted(tiny_service):
    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=40, seed=2))
    async with app.run_test(size=SIZE) as pilot:
        long_prompt = ("A pasted paragraph of text. " * 800)[:20_000]
        app.chat.prompt_box.insert(long_prompt)  # a paste
        await pilot.press("enter")
        await until(pilot, lambda: not app.chat.generating)
        await pilot.pause(0.2)
        tr = app.chat.transcript
        assert tr.scroll_offset.y >= tr.max_scroll_y - 1 and tr.max_scroll_y > 100
        max_pos = tiny_service.config.max_position_embeddings
        note = f"the model saw the last {max_pos // 2} of 20000 prompt bytes"
        assert note in tr.plain_text() and note in app.chat.turns[-1].note


# ------------------------------------------------------------------ 9: 80x24
async def test_9_everything_essential_fits_at_80x24(tiny_service):
    from textual.widgets._toast import Toast

    app = BLTChatApp(service=tiny_service, settings=Settings())
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.pause()
        await until(pilot, lambda: footer_shows(app, "F1"))  # the footer composes after the first frame
        assert_footer_complete(app, [k for k in CHAT_KEYS if k.show])
        status = app.chat.status
        one, two = status.render().plain.splitlines()
        assert cell_len(one) <= status.size.width and cell_len(two) <= status.size.width
        # only the model's name may be shortened: state, legend and counters are whole
        assert one.endswith("  idle  H 0" + " " * 12 + "4+ nats ▏patch")
        assert two.endswith(" · 0 bytes · 0 patches · 0.00 B/patch") or "B/patch  " in two
        path = "/a/rather/long/path/to/an/export/directory/that/goes/on/transcript-20261129.md"
        app.notify(path, title="Transcript exported")
        await pilot.pause(0.3)
        toast = app.screen.query(Toast).last()
        lines = [s.text.strip("▌ ") for s in toast.render_lines(toast.region.reset_offset)]
        assert path in "".join(lines)  # wrapped, never cut
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.patching is not None)
        await pilot.pause()
        screen = app.screen
        assert_labels_fit(screen)
        plot = screen.query_one("#insp-plot-scroll")
        assert plot.region.height >= 6 and screen.region.contains_region(plot.region)
        assert screen.plot_rows >= 3
        await pilot.press("escape", "f2")
        await pilot.pause()
        assert_labels_fit(app.screen)


def footer_shows(app: BLTChatApp, key: str) -> bool:
    from textual.widgets._footer import FooterKey

    return any(fk.key_display == key for fk in app.screen.query(FooterKey))


def assert_footer_complete(app: BLTChatApp, keys) -> None:
    from textual.widgets._footer import FooterKey

    shown = {}
    for fk in app.screen.query(FooterKey):
        assert app.screen.region.contains_region(fk.region), fk.key
        assert fk.region.width >= cell_len(f"{fk.key_display} {fk.description}"), fk.description
        shown[fk.key_display] = fk.description
    for k in keys:
        assert shown.get(key_display(k.keys.split(",")[0])) == k.label


def assert_labels_fit(screen) -> None:
    from textual.widgets import Label

    labels = list(screen.query(Label))
    assert labels
    for label in labels:
        text = str(label.render())
        parent = label.parent.content_region if label.parent is not None else screen.region
        assert label.region.width >= cell_len(text), text
        assert label.region.right <= parent.right, text


# ------------------------------------------------------------------ 10: first start and small gaps
async def test_10_welcome_clear_palette_and_inspector_gaps(tiny_service, tmp_path):
    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=12, seed=1))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        welcome = app.chat.transcript.plain_text()
        assert welcome.startswith("Welcome") and "F1" in welcome and "red" in welcome and "▏" in welcome
        app.chat.send("hello")
        await until(pilot, lambda: not app.chat.generating)
        await pilot.pause(0.1)
        assert app.chat.info.recent
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.chat.info.recent == () and app.chat.info.bytes == 0
        titles = [t for t, _h, _a in palette_commands()]
        for scheme in ("entropy", "monotonic", "fixed", "space", "model default"):
            assert any(t.startswith("Patching:") and scheme.split()[0] in t for t in titles), scheme
        await pilot.press("ctrl+p", *"fixed stride")
        await pilot.pause(0.4)
        await pilot.press("enter")
        await until(pilot, lambda: app.settings.scheme == "fixed")
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen))
        screen = app.screen
        await pilot.press("ctrl+l")  # no answer yet
        await pilot.pause()
        assert "No answer yet" in screen.error_text
        f = tmp_path / "sample.txt"
        f.write_text("text from a file")
        screen.query_one("#insp-file").value = str(f)
        screen.query_one("#insp-file").focus()
        await pilot.press("enter")
        assert screen.error_text == ""  # cleared as the file loads
        await until(pilot, lambda: screen.analysis is not None and screen.analysis.data == f.read_bytes())
        await pilot.press("ctrl+n")
        assert screen.query_one("#insp-input").text == ""


# ------------------------------------------------------------------ 11: entropy colours
def _hue(c) -> float:
    import colorsys

    t = c.get_truecolor()
    h, _s, _v = colorsys.rgb_to_hsv(t.red / 255, t.green / 255, t.blue / 255)
    return h * 360


@pytest.mark.parametrize("system,minimum", [(ColorSystem.EIGHT_BIT, 5), (ColorSystem.STANDARD, 3)])
def test_11_entropy_scale_stays_ordered_and_distinct_when_downgraded(system, minimum):
    down = [RichColor.parse(c.hex).downgrade(system) for c in BUCKET_COLORS]
    distinct = []
    for c in down:
        if not distinct or c.get_truecolor() != distinct[-1].get_truecolor():
            distinct.append(c)
    assert len({c.get_truecolor() for c in down}) >= minimum
    hues = [_hue(c) for c in distinct]
    assert 200 <= hues[0] <= 250 and (hues[-1] <= 10 or hues[-1] >= 350)  # blue ... red
    assert all(a >= b for a, b in zip(hues, hues[1:])), hues  # never back towards blue


# ------------------------------------------------------------------ reactive state and history
async def test_bindings_follow_the_reactive_state(endless_service):
    app = BLTChatApp(service=endless_service, settings=Settings(max_new_bytes=100_000, seed=1))
    async with app.run_test(size=SIZE) as pilot:
        assert app.chat.check_action("regenerate", ()) is None  # nothing to regenerate
        app.chat.send("x")
        await pilot.pause()
        assert app.chat.generating and app.chat.check_action("regenerate", ()) is None
        await pilot.press("escape")
        await pilot.pause()
        assert app.chat.check_action("regenerate", ()) is True
        assert app.chat.status.info.state == "stopped"  # the bar is bound to the screen's state


async def test_prompt_history_up_down(tiny_service):
    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=4, seed=1))
    async with app.run_test(size=SIZE) as pilot:
        for text in ("first", "second"):
            await pilot.press(*text, "enter")
            await until(pilot, lambda: not app.chat.generating)
        box = app.chat.prompt_box
        await pilot.press("up")
        assert box.text == "second"
        await pilot.press("up")
        assert box.text == "first"
        await pilot.press("down", "down")
        assert box.text == ""


# ------------------------------------------------------------------ found by the fuzz test
async def test_fast_keys_found_by_fuzzing(tiny_service):
    """Textual 8.2.8 crashes that fast typing reached, each now harmless: Ctrl+Z after sending a
    long prompt (undo with a scrollbar change), Enter twice in the command palette (the second
    dismiss popped the chat screen), Esc typed repeatedly on every screen."""
    from textual.command import CommandList

    app = BLTChatApp(service=tiny_service, settings=Settings(max_new_bytes=4, seed=1))
    async with app.run_test(size=(80, 24)) as pilot:
        app.chat.prompt_box.insert("line\n" * 20)
        await pilot.press("enter")
        await until(pilot, lambda: not app.chat.generating)
        await pilot.press("ctrl+z", "ctrl+y")
        assert alive(app)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: bool(app.screen.query(CommandList))
                    and app.screen.query_one(CommandList).option_count > 0)
        send_keys(app, "enter", "enter")  # queued at once
        await pilot.pause(0.3)
        assert alive(app) and isinstance(app.screen, ChatScreen)
        for key in ("f1", "f2", "f4"):
            send_keys(app, key)
            await until(pilot, lambda: not isinstance(app.screen, ChatScreen))
            send_keys(app, "escape", "escape", "escape")
            # a loaded machine may take a while to close the screen (the inspector analyses)
            await until(pilot, lambda: not alive(app) or isinstance(app.screen, ChatScreen))
            assert alive(app) and isinstance(app.screen, ChatScreen)


def send_keys(app: BLTChatApp, *keys: str) -> None:
    """Queue keys all at once, as the terminal driver does for fast typing."""
    from textual import events

    for key in keys:
        app._driver.send_message(events.Key(key, None))


async def test_9_large_terminal_200x60(tiny_service):
    app = BLTChatApp(service=tiny_service, settings=Settings())
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        assert_footer_complete(app, [k for k in CHAT_KEYS if k.show])
        assert app.chat.transcript.size.height >= 45  # the transcript takes the room
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.patching is not None)
        await pilot.pause()
        assert_labels_fit(app.screen)
        assert app.screen.plot_rows >= 10
        await pilot.press("escape", "f2")
        await pilot.pause()
        assert_labels_fit(app.screen)


async def test_every_palette_is_the_safe_one_and_a_palette_theme_is_saved(tiny_service):
    from blt_chat.widgets.commands import SafeCommandPalette

    app = BLTChatApp(service=tiny_service, settings=Settings())
    async with app.run_test(size=SIZE) as pilot:
        app.search_themes()
        await until(pilot, lambda: isinstance(app.screen, SafeCommandPalette))
        await pilot.press("escape")
        app.theme = "textual-light"  # what choosing it in that list does
        await pilot.pause()
        assert saved()["theme"] == "textual-light" == app.settings.theme


async def test_inspector_resize_after_a_failed_repatch(tiny_service):
    """Found by the fuzz test: a new text analysed while a field is invalid kept the old text's
    patches, and the next resize drew them against the new bytes (IndexError)."""
    app = BLTChatApp(service=tiny_service, settings=Settings())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.patching is not None)
        screen = app.screen
        screen.query_one("#insp-stride").value = "x"
        screen.inspect_text("a much longer text than the sample " * 10)
        await until(pilot, lambda: screen.analysis is not None and len(screen.analysis.data) > 300)
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        assert alive(app) and screen.patching is None and "stride" in screen.error_text
