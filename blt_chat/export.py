"""F7's transcript of the current branch as Markdown and as a JSON document (every byte with its
entropy, patch and probability; every answer with the model and settings that wrote it)."""

from __future__ import annotations

import math
from typing import Any

from .conversation import Conversation
from .render import visible_text
from .settings import Settings


def transcript_documents(conv: Conversation, model: str, model_path: str | None,
                         settings: Settings) -> tuple[str, dict]:
    md = [f"# {conv.display_title}\n\nblt-chat transcript · Model: {model}"
          + (f" ({model_path})" if model_path else "") + f"  \nTemplate: {settings.template}\n"]
    turns_json = []
    for t in conv.turns:
        who = "You" if t.role == "user" else "BLT"
        pos, n = conv.alternatives(t)
        alt = f" ({pos}/{n})" if n > 1 else ""
        md.append(f"**{who}{alt}:**\n\n```text\n{visible_text(bytes(t.data))}\n```\n")
        if t.note:
            md.append(f"*{t.note.lstrip('■ ')}*\n")
        entry: dict[str, Any] = {"role": t.role, "text": t.text, "bytes_hex": bytes(t.data).hex(),
                                 "alternative": pos, "alternatives": n}
        if t.role == "assistant":
            entry["note"] = t.note
            entry["meta"] = t.meta
            entry["bytes"] = [
                {"byte": r.byte, "entropy": r.entropy if math.isfinite(r.entropy) else None,
                 "patch_start": r.patch_start, "patch_index": r.patch_index,
                 "prob": r.prob if math.isfinite(r.prob) else None}
                for r in t.records]
        turns_json.append(entry)
    doc = {"format": "blt-chat transcript v1", "title": conv.display_title, "conversation": conv.id,
           "model": model, "model_path": model_path, "settings": settings.to_dict(),
           "turns": turns_json}
    return "\n".join(md), doc
