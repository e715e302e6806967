"""Every byte's alternatives (issue 17): the inspector's byte cursor and its panel. The panel's
probabilities equal a full forward's softmax at that position (within 1e-3: stored in float16)."""

from __future__ import annotations

import pytest
import torch

from blt_chat.alternatives import char_span, id_label
from blt_chat.app import BLTChatApp
from blt_chat.inspect_view import GUTTER
from blt_chat.settings import Settings
from blt_model.ids import OFFSET, encode
from blt_model.train.evaluation import model_forward

from .chat_helpers import open_inspector_on, until

TEXT = "Zürich, 🦊 and bytes: patches start where the next byte is hard to predict."


def test_labels_and_characters():
    data = TEXT.encode()
    fox = data.index("🦊".encode())
    assert char_span(data, fox + 2) == (fox, fox + 4)
    assert char_span(data, 0) == (0, 1)
    assert char_span(b"a\xffb", 1) == (1, 2)  # an invalid byte is its own character
    assert [id_label(OFFSET + b) for b in (97, 32, 10, 0xF0)] == ["a", "␠", "\\n", "0xf0"]


def panel(screen) -> str:
    return str(screen.query_one("#insp-alt").render())


@pytest.mark.anyio
async def test_byte_cursor_panel_matches_a_full_forward(tiny_service):
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_inspector_on(pilot, tiny_service, TEXT)
        await pilot.press("left")  # no cursor yet: the key is the focused text box's
        assert screen.cursor is None
        await pilot.press("f8")
        assert screen.cursor == 0 and screen.has_class("-cursor")
        await until(pilot, lambda: screen._current_alternatives() is not None, timeout=60)
        data = TEXT.encode()
        target = data.index("🦊".encode()) + 1  # the fox's second byte
        await pilot.press(*["right"] * target)
        assert screen.cursor == target
        text = panel(screen)
        assert f"byte {target}: 0x9f (0x9f)" in text and "U+1F98A, 2 of 4" in text
        cfg = screen.patching.config
        ids = torch.tensor([encode(data)])
        with torch.inference_mode():
            blt = torch.softmax(model_forward(tiny_service.model, ids, cfg)[0][0, target].float(), -1)
            em = torch.softmax(tiny_service.model.entropy_model(ids)[0, target].float(), -1)
        alt = screen._current_alternatives()
        for ref, top_ids, top_p in ((blt, alt.blt_ids, alt.blt_p), (em, alt.em_ids, alt.em_p)):
            want = ref.topk(5)
            assert top_p[target].float().tolist() == pytest.approx(want.values.tolist(), abs=1e-3)
            assert sorted(top_ids[target].tolist()) == sorted(want.indices.tolist())
        rec = screen.patching.patches[screen.patching.patch_of[target] - 1]
        assert f"patch #{rec['index']} (start {rec['start']}, length {rec['length']})" in text
        p_actual = float(blt[ids[0, target + 1]])
        assert f"surprisal {-torch.tensor(p_actual).log2().item():.2f} bits" in text
        # a click on the plot's byte row puts the cursor on that byte
        plot = screen.query_one("#insp-plot")
        await pilot.click(plot, offset=(GUTTER + 3, plot.size.height - 2))
        assert screen.cursor == 3
        await pilot.press("escape")  # leaves the cursor, not the inspector
        assert screen.cursor is None and app.screen is screen and not screen.has_class("-cursor")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is not screen)
