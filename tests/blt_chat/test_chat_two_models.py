"""Two models, one text (issue 17): the inspector's F9 view scores its text with the app's model
and a second one loaded from a directory; its totals are `compute_bits_per_byte` of each model,
its colours the scales' colours, its plot bits per byte per line or window (blt_chat/plots.py)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from blt_chat.app import BLTChatApp
from blt_chat.colour_by import DIFFERENCE, SCALES
from blt_chat.keys import TWO_MODELS_KEYS, two_models_key_rows
from blt_chat.plots import (
    along,
    bits_per_byte,
    differences,
    line_spans,
    mode_values,
    next_of,
    span_means,
    totals_line,
    two_models_json,
    window_size,
    window_spans,
)
from blt_chat.render import BUCKET_COLORS, KIND_TEXT
from blt_chat.screens.inspector import InspectorScreen
from blt_chat.screens.two_models import TwoModelsScreen, colour_scale
from blt_chat.service import ModelService
from blt_chat.settings import Settings
from blt_model import compute_bits_per_byte, save_model

from .chat_helpers import until
from .conftest import tiny_config

TEXT = "Byte Latent Transformer groups bytes.\nWhere the next byte is hard, a patch starts.\nZürich, 2024!\n"
README = Path(__file__).resolve().parents[2] / "README.md"


# ---------------------------------------------------------------- pure logic (plots.py)
def test_spans_and_means():
    assert line_spans(b"ab\ncd\n\nx") == [(0, 3), (3, 6), (6, 7), (7, 8)]
    assert line_spans(b"") == [] and line_spans(b"one") == [(0, 3)]
    assert window_size(10) == 8 and window_size(8 * 64) == 8 and window_size(8 * 64 + 1) == 16
    assert window_spans(10, 4) == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ValueError):
        window_spans(10, 0)
    bits = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert span_means(bits, [(0, 2), (2, 5)]) == [1.5, 4.0]
    assert bits_per_byte(bits) == 3.0 and math.isnan(bits_per_byte([]))


def test_along_lines_and_windows():
    data = b"aa\nbbbb\n"
    a = along(data, {"A": [1.0] * 3 + [3.0] * 5, "B": [2.0] * 8}, "line")
    assert a.xs == [1, 2] and a.series == {"A": [1.0, 3.0], "B": [2.0, 2.0]} and a.xlabel == "line"
    w = along(bytes(20), {"A": list(range(20))}, "window")  # 8-byte windows: 0-7, 8-15, 16-19
    assert w.xs == [0, 8, 16] and w.series["A"] == [3.5, 11.5, 17.5] and "8-byte" in w.xlabel
    with pytest.raises(ValueError):
        along(data, {}, "page")


def test_modes_totals_and_json():
    a, b = [2.0, 4.0], [1.0, 5.0]
    assert differences(a, b) == [-1.0, 1.0]
    assert mode_values("A", a, None) == a and mode_values("B", a, None) is None
    assert mode_values("B − A", a, b) == [-1.0, 1.0] and mode_values("B − A", None, b) is None
    assert next_of(("A", "B", "B − A"), "B − A") == "A"
    assert totals_line(("m", None), a, None) == "A 3.0000 bits/byte"
    assert totals_line(("m", "n"), a, None) == "A 3.0000 bits/byte · B …"
    assert totals_line(("m", "n"), [4.0], [3.0]) == ("A 4.0000 bits/byte · B 3.0000 bits/byte · "
                                                    "B − A -1.0000 bits/byte (B needs 25.0% fewer)")
    doc = two_models_json(b"hi", [{"label": "m"}, {"label": "n"}], a, b)
    assert [m["role"] for m in doc["models"]] == ["A", "B"] and doc["models"][1]["bits"] == b
    assert doc["models"][0]["bits_per_byte"] == 3.0 and doc["difference_bits_per_byte"] == 0.0
    assert "difference_bits_per_byte" not in two_models_json(b"hi", [{"label": "m"}], a, None)


def test_difference_scale_diverges_on_the_one_palette():
    assert DIFFERENCE.bucket(0.0) == SCALES["gap"].bucket(0.0) and DIFFERENCE.bucket(-9) == 0
    assert DIFFERENCE.bucket(9) == len(BUCKET_COLORS) - 1
    assert colour_scale("A").bucket(3.0) == SCALES["surprisal"].bucket(3.0)


def test_keys_screen_and_readme_agree():
    assert [(b.key, b.action) for b in TwoModelsScreen.BINDINGS] == [(k.keys, k.action) for k in TWO_MODELS_KEYS if k.action]
    for b in TwoModelsScreen.BINDINGS:
        assert hasattr(TwoModelsScreen, f"action_{b.action}")
    text = README.read_text(encoding="utf-8")
    block = re.search(r"\| key \| on the two-models screen \|\n\|---\|---\|\n((?:\|.*\|\n?)+)", text)
    rows = [tuple(c.strip() for c in line.strip().strip("|").split("|", 1)) for line in block.group(1).strip().splitlines()]
    assert rows == two_models_key_rows()


# ---------------------------------------------------------------- the screen
def model_b_dir(tmp_path: Path) -> tuple[ModelService, Path]:
    b = ModelService.random(tiny_config(), device="cpu", seed=1)
    save_model(b.model, tmp_path / "model-b")
    return b, tmp_path / "model-b"


def text_glyphs(screen) -> list:
    tr = screen.query_one("#tm-text")
    return [g for line in tr._vlines for g in line.glyphs if g.kind == KIND_TEXT and g.parity >= 0 and g.text.strip()]


def totals(screen) -> str:
    return str(screen.query_one("#tm-totals").render())


async def open_two_models(pilot, service) -> tuple[InspectorScreen, TwoModelsScreen]:
    inspector = InspectorScreen(service, text=TEXT)
    await pilot.app.push_screen(inspector)
    await until(pilot, lambda: inspector.analysis is not None, timeout=60)
    await pilot.press("f9")
    await until(pilot, lambda: isinstance(pilot.app.screen, TwoModelsScreen))
    return inspector, pilot.app.screen


@pytest.mark.anyio
async def test_totals_are_each_models_bits_per_byte(tiny_service, tmp_path):
    b, path = model_b_dir(tmp_path)
    data = TEXT.encode()
    want_a = compute_bits_per_byte(tiny_service.model, data)["bits_per_byte"]
    want_b = compute_bits_per_byte(b.model, data)["bits_per_byte"]
    assert abs(want_a - want_b) > 1e-3  # two different models
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(160, 45)) as pilot:
        inspector, screen = await open_two_models(pilot, tiny_service)
        await until(pilot, lambda: screen.bits["A"] is not None, timeout=60)
        screen.query_one("#tm-path").value = str(path)
        await pilot.press("enter")
        await until(pilot, lambda: screen.bits["B"] is not None, timeout=60)
        assert bits_per_byte(screen.bits["A"]) == pytest.approx(want_a, abs=1e-4)
        assert bits_per_byte(screen.bits["B"]) == pytest.approx(want_b, abs=1e-4)
        line = totals(screen)
        shown = [float(x) for x in re.findall(r"([-+]?\d+\.\d+) bits/byte", line)]
        assert shown == pytest.approx([want_a, want_b, want_b - want_a], abs=1e-4)
        assert inspector.model_b is screen.services["B"]  # kept by the inspector
        # difference mode (the one after a load): a chosen byte's colour is the scale's colour
        assert screen.colour_mode == "B − A" and "colour: B − A" in str(screen.query_one("#tm-legend").render())
        diff = differences(screen.bits["A"], screen.bits["B"])
        ascii_idx = [i for i, c in enumerate(data) if c < 0x80 and not chr(c).isspace()]
        glyphs = text_glyphs(screen)
        i = max(ascii_idx, key=lambda k: abs(diff[k]))
        g = glyphs[ascii_idx.index(i)]
        assert g.text == chr(data[i]) and g.bucket == DIFFERENCE.bucket(diff[i])
        book = screen.query_one("#tm-text").book
        assert book.style(g.kind, g.bucket, g.parity).bgcolor == BUCKET_COLORS[DIFFERENCE.bucket(diff[i])].rich_color
        await pilot.press("f7")  # A's bits on the surprisal scale
        assert screen.colour_mode == "A"
        assert text_glyphs(screen)[ascii_idx.index(i)].bucket == SCALES["surprisal"].bucket(screen.bits["A"][i])
        assert screen.span_kind == "line"
        await pilot.press("f8")
        assert screen.span_kind == "window"
        await pilot.press("ctrl+g")
        await until(pilot, lambda: screen.last_export is not None)
        doc = json.loads(screen.last_export.read_text())
        assert [m["bits_per_byte"] for m in doc["models"]] == pytest.approx([want_a, want_b], abs=1e-4)
        assert doc["models"][1]["bits"] == screen.bits["B"] and doc["models"][1]["path"] == str(path.resolve())
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is inspector)
        # re-opening keeps model B (no new load) and scores the text again
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(app.screen, TwoModelsScreen) and app.screen is not screen)
        again = app.screen
        assert again.services["B"] is inspector.model_b and again.loading_path is None
        await until(pilot, lambda: again.bits["B"] is not None, timeout=60)
        assert again.bits["B"] == pytest.approx(screen.bits["B"])


@pytest.mark.anyio
async def test_bad_paths_give_one_error_line(tiny_service, tmp_path):
    (tmp_path / "not-a-model").mkdir()
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(120, 36)) as pilot:
        _inspector, screen = await open_two_models(pilot, tiny_service)
        for raw, says in ((str(tmp_path / "missing"), "no such file"),
                          (str(tmp_path / "not-a-model"), "config.json"), ("a[/]b\x00", "Model B not loaded")):
            screen.query_one("#tm-path").value = raw
            await pilot.press("enter")
            await until(pilot, lambda says=says: says in screen.error_text)
            assert "\n" not in screen.error_text and screen.services["B"] is None
        assert app.screen is screen and app.is_running


@pytest.mark.anyio
async def test_escape_stops_a_running_pass(tiny_service):
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(120, 36)) as pilot:
        data = (TEXT * 800).encode()[:64 * 1024]  # many windows: seconds on the CPU
        screen = TwoModelsScreen(tiny_service, data)
        await app.push_screen(screen)
        await until(pilot, lambda: "%" in totals(screen), timeout=60)  # windows scored, more to come
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is not screen)
        assert tiny_service.lock.acquire(timeout=10)  # the pass let go of the model within a window
        tiny_service.lock.release()
        assert screen.bits["A"] is None


# ---------------------------------------------------------------- snapshots
SIZES = [(80, 24), (160, 45)]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_two_models_snapshot(snap_compare, tiny_service, size):
    from .test_chat_snapshots import _quiet, make_app

    b = ModelService.random(tiny_config(), device="cpu", seed=1)
    n = len(TEXT.encode())
    # recorded bits (no model call, so no float noise of one CPU or another in the picture)
    bits_a = [4.0 + 3.5 * math.sin(i * 0.7) for i in range(n)]
    bits_b = [x - 2.0 * math.cos(i * 0.3) - 0.5 for i, x in enumerate(bits_a)]

    async def run_before(pilot):
        await _quiet(pilot)
        screen = TwoModelsScreen(pilot.app.service, TEXT.encode(), b)
        screen.bits = {"A": bits_a, "B": bits_b}
        await pilot.app.push_screen(screen)
        await pilot.pause()
        assert not screen.scoring
        screen.set_focus(None)
        await pilot.pause()

    assert snap_compare(make_app(tiny_service), terminal_size=size, run_before=run_before)
