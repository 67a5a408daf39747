"""A virtualenv with FastChat's own ``openai_api_server`` as fschat 0.2.36 runs it: pydantic 1
(whose coercions FastChat's clients rely on) and the FastAPI that goes with it, no torch.

The project's environment has pydantic 2, under which FastChat's request models read values
otherwise, so the side-by-side tests run FastChat's server from here. Made once (about 20 s)
and reused while its requirements stay the same; ``.ci/run`` makes it before the tests with
``python -m tests.integration.fastchat_venv``. ``scripts/bench`` keeps its FastChat server in
the same place with the same requirements, so either reuses the other's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".bench" / "fastchat-venv"
REQUIREMENTS = ["fschat==0.2.36", "pydantic<2", "fastapi<0.111"]
_MARKER = ".bench-requirements"  # what scripts/bench writes: the requirements, one a line
_NO_TORCH = "torch<0\n"  # the server needs no torch: pip fails rather than fetch it
_CHECK = "import fastchat.serve.openai_api_server, pydantic; assert pydantic.VERSION < '2'"


def ensure(path: Path = VENV) -> Path:
    """The virtualenv's python, after making the virtualenv if it is missing or stale."""
    python = path / "bin" / "python"
    marker = path / _MARKER
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if marker.exists() and marker.read_text() == wanted and _works(python):
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
    constraints = path / "constraints.txt"
    constraints.write_text(_NO_TORCH)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-c", str(constraints), *REQUIREMENTS], check=True)
    if not _works(python):
        raise RuntimeError(f"FastChat's openai_api_server does not import in {path}")
    marker.write_text(wanted)
    return python


def _works(python: Path) -> bool:
    return python.exists() and subprocess.run([str(python), "-c", _CHECK], capture_output=True).returncode == 0


if __name__ == "__main__":
    print(ensure())
