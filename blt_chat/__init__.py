"""blt-chat: a terminal app for chatting with Byte Latent Transformer models and inspecting
their patches. `blt_chat.service` is the only module that imports `blt_model`."""

__version__ = "0.1.0"
