"""Widgets of the blt-chat app: transcript, prompt box, status bar, command palette provider."""
