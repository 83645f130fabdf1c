"""``affine-aug tune``: arguments, and starting the server (the CLI only calls these)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from . import MISSING

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="IMAGE_OR_FOLDER",
        help="images and folders of images to pick from (default: the built-in test pattern only)",
    )
    p.add_argument("--config", default="mild", help="config path or preset name to start from (default: mild)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 serves the network)",
    )
    p.add_argument("--save-dir", help="folder the page may save configs into (default: saving is download only)")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``(host, port)``; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the queue until the server takes them
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def run(args) -> int:
    try:
        import uvicorn

        from .server import State, make_app
        from .sources import BadInput, Sources
    except ImportError as e:
        print(f"affine-aug: error: {MISSING} ({e.name} is not installed)", file=sys.stderr)
        return 2
    from ..config import load_config

    if not 0 <= args.port < 65536:
        print(f"affine-aug: error: --port must be in [0, 65535], got {args.port}", file=sys.stderr)
        return 2
    try:
        sources = Sources.from_paths(args.inputs)
        save_dir = None
        if args.save_dir is not None:
            save_dir = Path(args.save_dir)
            save_dir.mkdir(parents=True, exist_ok=True)
            save_dir = save_dir.resolve()
        sock = bind(args.host, args.port)
    except (BadInput, OSError) as e:
        print(f"affine-aug: error: {e}", file=sys.stderr)
        return 2
    state = State(sources=sources, config=load_config(args.config), save_dir=save_dir)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if args.host in ("0.0.0.0", "::", ""):
        print(
            "affine-aug tune: serving every network interface: anyone who can reach this machine can use the page",
            file=sys.stderr,
        )
    print(f"affine-aug tune: http://{shown}:{port}/ (Ctrl-C to stop)", flush=True)
    server = uvicorn.Server(uvicorn.Config(make_app(state, args.host), log_level="warning", lifespan="off"))
    server.run(sockets=[sock])
    return 0
