"""A virtualenv with FastChat's own ``openai_api_server`` and controller as fschat 0.2.36 runs
them: pydantic 1 (whose coercions FastChat's clients rely on) and the FastAPI that goes with
it, no torch.

The project's environment has pydantic 2, under which FastChat's request models read values
otherwise, so the side-by-side tests and the benchmark run FastChat's server from here. The
tests make it once (about 20 s; ``python -m devstack.fastchat_venv``, which ``.ci/run`` runs)
and reuse it while its requirements stay the same; the benchmark installs nothing and prints
that command when it is missing.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench" / "fastchat-venv"
REQUIREMENTS = ["fschat==0.2.36", "pydantic<2", "fastapi<0.111"]
_MARKER = ".requirements"  # the requirements it was made with, one a line
_NO_TORCH = "torch<0\n"  # the server needs no torch: pip fails rather than fetch it
_CHECK = ("import importlib.metadata as m, pydantic, fastchat.serve.openai_api_server, "
          "fastchat.serve.controller; assert m.version('fschat') == '0.2.36' "
          "and pydantic.VERSION < '2'")


def command(path: Path = VENV) -> str:
    """The shell command that makes the virtualenv at ``path``."""
    return f"{shlex.quote(sys.executable)} -m devstack.fastchat_venv {shlex.quote(str(path))}"


def works(python: Path) -> bool:
    """FastChat's controller and API server import with ``python`` (LOGDIR "": their loggers
    would otherwise create log files in the working directory)."""
    return python.exists() and subprocess.run(
        [str(python), "-c", _CHECK], capture_output=True, env=dict(os.environ, LOGDIR="")
    ).returncode == 0


def ensure(path: Path = VENV) -> Path:
    """The virtualenv's python, after making the virtualenv if it is missing or stale."""
    python = path / "bin" / "python"
    marker = path / _MARKER
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if marker.exists() and marker.read_text() == wanted and works(python):
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
    constraints = path / "constraints.txt"
    constraints.write_text(_NO_TORCH)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-c", str(constraints), *REQUIREMENTS], check=True)
    if not works(python):
        raise RuntimeError(f"FastChat's openai_api_server does not import in {path}")
    marker.write_text(wanted)
    return python


if __name__ == "__main__":
    print(ensure(Path(sys.argv[1]) if len(sys.argv) > 1 else VENV))
