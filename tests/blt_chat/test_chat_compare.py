"""Compare patchings (issue 17): the compare view's numbers equal `patch_starts` on the same
entropies, and adding, editing and removing rows never calls the entropy model again."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Input

from blt_chat.app import BLTChatApp
from blt_chat.compare import Comparison, config_from_values, default_second, values_from_config
from blt_chat.screens.compare import CompareScreen
from blt_chat.screens.inspector import InspectorScreen
from blt_chat.settings import Settings
from blt_model import patch_starts

from .chat_helpers import until

TEXT = "Byte Latent Transformer groups bytes into patches; 2024-12-13, Pagnoni et al. Zürich 🦊."


def expected(analysis, cfg, model) -> dict:
    """The numbers straight from the library: patch_starts on the analysis's entropies."""
    n = len(analysis.data)
    starts = patch_starts(analysis.ids, analysis.entropies if cfg.needs_entropies else None, cfg)[0, 1:n + 1]
    count = int(starts.sum())
    mean = n / count
    return {"n_patches": count, "mean": mean, "share": count / n, "flops": model.flops_per_byte(mean),
            "starts": [i for i, s in enumerate(starts.tolist()) if s]}


def check_rows(comparison: Comparison, model) -> None:
    for row in comparison.rows:
        e = expected(comparison.analysis, row.config, model)
        assert row.n_patches == e["n_patches"]
        assert row.mean_patch_size == pytest.approx(e["mean"])
        assert row.global_share == pytest.approx(e["share"])
        assert row.flops_per_byte == pytest.approx(e["flops"])
        assert [p["start"] for p in row.patching.patches] == e["starts"]


def test_numbers_equal_patch_starts(tiny_service):
    a = tiny_service.analyze(TEXT.encode())
    base = tiny_service.config.patching
    configs = [base.replace(entropy_threshold=0.5, max_patch_size=6), base.replace(scheme="fixed", stride=3),
               base.replace(use_monotonic=True, monotonic_threshold=0.01, min_patch_size=2), base.replace(scheme="space")]
    c = Comparison(a, configs, tiny_service.model.flops_per_byte)
    check_rows(c, tiny_service.model)
    assert len({r.n_patches for r in c.rows}) > 1  # the rows really differ
    assert not c.add(base)  # four at most
    assert c.remove(0) and c.remove(0) and not c.remove(0)  # two stay
    assert c.edit(0, base.replace(scheme="fixed", stride=7)) and not c.edit(0, base.replace(scheme="fixed", stride=7))
    check_rows(c, tiny_service.model)
    assert [r["n_patches"] for r in c.as_json()] == [r.n_patches for r in c.rows]


def test_controls_round_trip(tiny_service):
    base = tiny_service.config.patching
    for cfg in (base, default_second(base), base.replace(use_monotonic=True, max_patch_size=9, min_patch_size=3),
                base.replace(scheme="fixed", stride=5, entropy_threshold=2.25)):
        assert config_from_values(base, *values_from_config(cfg)) == cfg
    with pytest.raises(ValueError, match="Min patch size"):
        config_from_values(base, "entropy", {"min_patch_size": "zero"})


@pytest.mark.anyio
async def test_compare_screen_repatches_without_the_entropy_model(tiny_service, monkeypatch):
    calls = []
    em = tiny_service.model.entropy_model
    original = em.entropies

    def counting(*args, **kw):
        calls.append(1)
        return original(*args, **kw)

    monkeypatch.setattr(em, "entropies", counting)
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.patching is not None)
        inspector = app.screen
        inspector.query_one("#insp-threshold", Input).value = "0.5"
        await until(pilot, lambda: inspector.patching.config.entropy_threshold == 0.5)
        n_calls = len(calls)
        assert n_calls >= 1
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        c = screen.comparison
        assert [r.config for r in c.rows] == [inspector.patching.config, default_second(inspector.patching.config)]
        await pilot.press("f6", "f6")  # add two copies of the selected row: four rows
        await pilot.pause()
        assert len(c.rows) == 4 and screen.selected == 3
        await pilot.press("f6")  # a fifth is refused
        assert len(c.rows) == 4
        # edit row 4 through the controls: stride 3, fixed scheme
        screen.query_one("#cmp-stride", Input).value = "3"
        screen.query_one("#cmp-scheme").value = "fixed"
        await until(pilot, lambda: c.rows[3].config.scheme == "fixed" and c.rows[3].config.stride == 3)
        # select row 1 with the table: the controls show its values
        table = screen.query_one("#cmp-table", DataTable)
        table.focus()
        await pilot.press("up", "up", "up")
        await until(pilot, lambda: screen.selected == 0)
        await until(pilot, lambda: screen.query_one("#cmp-threshold", Input).value == "0.5")
        screen.query_one("#cmp-threshold", Input).value = "1.0x"  # invalid: shown, not applied
        await until(pilot, lambda: "not re-patched" in screen.error_text)
        assert c.rows[0].config.entropy_threshold == 0.5
        screen.query_one("#cmp-threshold", Input).value = "1.25"
        await until(pilot, lambda: c.rows[0].config.entropy_threshold == 1.25)
        before = [r.config for r in c.rows]
        await pilot.press("f7")  # remove row 1
        await pilot.pause()
        assert [r.config for r in c.rows] == before[1:]
        check_rows(c, tiny_service.model)
        cells = [table.get_row_at(i) for i in range(table.row_count)]
        assert [cell[2] for cell in cells] == [str(r.n_patches) for r in c.rows]
        assert len(calls) == n_calls  # no entropy model call after the analysis
        await pilot.press("ctrl+g")
        await until(pilot, lambda: screen.last_export is not None)
        doc = json.loads(screen.last_export.read_text())
        assert [r["patch_starts"] for r in doc["configurations"]] == [
            [p["start"] for p in r.patching.patches] for r in c.rows]
        assert doc["bytes"] == len(c.analysis.data)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is inspector)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, InspectorScreen))
