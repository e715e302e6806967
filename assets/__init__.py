"""Data shipped with blt-chat: the default trained model (installed as package `blt_assets`)."""
