"""File writes from the UI. Every one turns an OSError into an error toast naming the path
(a read-only or full disk must never end the app)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from blt_model.io.files import atomic_write_text


def write_text_or_report(app: App, path: Path, text: str, what: str, *, notify: bool = True,
                         note: str = "") -> bool:
    """`notify=False` writes without a toast on failure (a save retried every second while an
    answer streams reports its failure once); `note` ends the toast."""
    try:
        atomic_write_text(path, text)
    except OSError as e:
        if notify:
            app.notify(f"Could not save {what} to {path}: {e.strerror or e}{note}", severity="error",
                       timeout=10)
        return False
    return True


def screenshot_or_report(app: App, directory: Path, filename: str | None = None) -> Path | None:
    """An SVG screenshot of the app in `directory`; None (and a toast) when it cannot be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return Path(app.save_screenshot(filename=filename, path=str(directory)))
    except OSError as e:
        where = directory / filename if filename else directory
        app.notify(f"Could not save the screenshot to {where}: {e.strerror or e}",
                   severity="error", timeout=10)
        return None
