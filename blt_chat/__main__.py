"""`blt-chat [MODEL_DIR] [--device D] [--serve]`."""

from __future__ import annotations

import argparse
import shlex
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="blt-chat",
        description="Chat with a Byte Latent Transformer model and watch it patch bytes.")
    p.add_argument("model_dir", nargs="?", default=None,
                   help="model directory (config.json + model.safetensors); default: the last one "
                        "used, else the shipped model, else a tiny random-weight model")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None,
                   help="device for this run (default: the device in the settings)")
    p.add_argument("--serve", action="store_true", help="serve the app in a web browser (textual-serve)")
    p.add_argument("--host", default="localhost", help="host for --serve (default: localhost)")
    p.add_argument("--port", type=int, default=8000, help="port for --serve (default: 8000)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.model_dir:
        from .service import model_dir_problem

        problem = model_dir_problem(args.model_dir)
        if problem:  # one line, before any UI: the user typed a wrong path
            print(f"blt-chat: {args.model_dir}: {problem}", file=sys.stderr)
            return 2
    if args.serve:
        try:
            from textual_serve.server import Server
        except ImportError:
            print("blt-chat: --serve needs textual-serve: pip install 'blt-chat[serve]' "
                  "(or pip install textual-serve)", file=sys.stderr)
            return 2
        cmd = [sys.executable, "-m", "blt_chat"]
        if args.model_dir:
            cmd.append(args.model_dir)
        if args.device:
            cmd += ["--device", args.device]
        Server(shlex.join(cmd), host=args.host, port=args.port, title="blt-chat").serve()
        return 0

    from .app import BLTChatApp
    from .settings import load_settings

    settings, msg = load_settings()
    if args.device:
        settings.device = args.device
    app = BLTChatApp(args.model_dir, settings=settings)
    if msg:
        app.startup_messages.append(msg)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
