"""Widgets and screens of the blt-chat app."""
