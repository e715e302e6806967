"""blt-chat's screens: the chat, and the settings, help, model picker and inspector screens
pushed over it. Each owns its bindings, so Esc closes the topmost screen first."""

from .chat import ChatScreen
from .help import HelpScreen
from .inspector import InspectorScreen
from .model_picker import ModelPicker
from .settings import SettingsScreen

__all__ = ["ChatScreen", "HelpScreen", "InspectorScreen", "ModelPicker", "SettingsScreen"]
