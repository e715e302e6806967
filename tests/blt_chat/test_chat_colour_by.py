"""Colour by (issue 17): entropy, the BLT's surprisal of the actual byte, or their gap; in
surprisal mode a byte's colour is the scale's colour for that byte's surprisal."""

from __future__ import annotations

import json
import math

import pytest
import torch

from blt_chat.app import BLTChatApp
from blt_chat.colour_by import SCALES, byte_values, next_mode
from blt_chat.render import BUCKET_COLORS, KIND_TEXT, NO_BUCKET
from blt_chat.screens.inspector import InspectorScreen
from blt_chat.settings import Settings
from blt_model.ids import encode
from blt_model.train.evaluation import model_forward

from .chat_helpers import open_inspector_on, until

TEXT = "Patches start where the next byte is hard to predict: 2024-12-13, Pagnoni et al."


def test_scales():
    s = SCALES["surprisal"]
    assert s.bucket(0.0) == 0 and s.bucket(8.0) == 11 and s.bucket(100.0) == 11 and s.bucket(-1) == 0
    assert s.bucket(float("nan")) == NO_BUCKET and s.bucket(None) == NO_BUCKET
    assert SCALES["gap"].bucket(0.0) == 6  # the middle of the scale: as surprised as expected
    assert SCALES["entropy"].bucket(1.0) == 3  # the chat's entropy scale (4 nats, 12 buckets)
    assert byte_values("gap", [math.log(2)], [3.0]) == [pytest.approx(2.0)]
    assert byte_values("surprisal", [1.0], None) is None
    assert [next_mode("entropy"), next_mode("surprisal"), next_mode("gap")] == ["surprisal", "gap", "entropy"]
    assert "bits" in SCALES["surprisal"].legend().plain


def full_forward_surprisal(model, data: bytes, cfg) -> list[float]:
    ids = torch.tensor([encode(data)])
    with torch.inference_mode():
        logits, _ = model_forward(model, ids, cfg)
    logp = torch.log_softmax(logits[0, :-1].float(), -1)
    return (-logp.gather(-1, ids[0, 1:, None])[:, 0] / math.log(2)).tolist()


def text_glyphs(screen: InspectorScreen) -> list:
    tr = screen.query_one("#insp-text")
    glyphs = [g for line in tr._vlines for g in line.glyphs if g.kind == KIND_TEXT and g.parity >= 0 and g.text.strip()]
    return glyphs


@pytest.mark.anyio
async def test_colour_by_surprisal_and_gap(tiny_service):
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_inspector_on(pilot, tiny_service, TEXT)
        assert "colour: entropy" in str(screen.query_one("#insp-legend").render())
        await pilot.press("f7")
        assert screen.colour_mode == "surprisal"
        await until(pilot, lambda: screen._current_surprisals() is not None)
        data = TEXT.encode()
        expected = full_forward_surprisal(tiny_service.model, data, screen.patching.config)
        got = screen._current_surprisals()
        assert got == pytest.approx(expected, abs=1e-4)
        legend = str(screen.query_one("#insp-legend").render())
        assert "colour: surprisal" in legend and "bits" in legend
        scale = SCALES["surprisal"]
        non_space = [i for i, b in enumerate(data) if b != 32]
        glyphs = text_glyphs(screen)
        assert len(glyphs) == len(non_space)
        book = screen.query_one("#insp-text").book
        for i, g in zip(non_space, glyphs, strict=True):
            assert g.text == chr(data[i])
            assert g.bucket == scale.bucket(got[i])
        # one chosen byte: its background is the scale's colour for its surprisal
        i = max(non_space, key=lambda k: got[k])
        g = glyphs[non_space.index(i)]
        colour = BUCKET_COLORS[scale.bucket(got[i])]
        if g.parity == 1:  # odd patches are shaded darker, as in the chat
            colour = colour.darken(0.12)
        assert book.style(g.kind, g.bucket, g.parity).bgcolor == colour.rich_color
        assert scale.hex(got[i]) == BUCKET_COLORS[scale.bucket(got[i])].hex.lower()
        await pilot.press("ctrl+g")  # the JSON export holds the BLT's probability of each byte
        await until(pilot, lambda: screen.last_export is not None)
        doc = json.loads(screen.last_export.read_text())
        assert doc["actual_byte_probability"] == pytest.approx([2.0 ** -b for b in expected], rel=1e-3)
        await pilot.press("f7")
        assert screen.colour_mode == "gap"
        ents = screen.patching.entropies
        gap = SCALES["gap"]
        for i, g in zip(non_space, text_glyphs(screen), strict=True):
            assert g.bucket == gap.bucket(got[i] - ents[i] / math.log(2))
        await pilot.press("f7")
        assert screen.colour_mode == "entropy"
        assert "colour: entropy" in str(screen.query_one("#insp-legend").render())
