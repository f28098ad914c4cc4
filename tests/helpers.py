"""Small helpers shared by the tests that start real server processes."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (tests only ever listen on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def medcode_command() -> str:
    """The `medcode` console script of the running interpreter's environment."""
    script = Path(sys.executable).parent / "medcode"
    return str(script) if script.exists() else (shutil.which("medcode") or "medcode")
