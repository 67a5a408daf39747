"""Which code is measured: the working tree, or ``fastchat_api/`` and ``config/`` as committed
at a git ref (to compare before and after a change in one sitting)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from . import ROOT


def snapshot(ref: str, work_dir: Path) -> tuple[Path, str]:
    """``fastchat_api/`` and ``config/`` at ``ref`` extracted under ``work_dir/src`` (reused
    when there); the directory and the commit. Exits with status 2 if ``ref`` is no commit."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT,
                         capture_output=True, text=True).stdout.strip()
    if not sha:
        sys.exit(f"bench: --ref {ref}: not a commit")
    dest = work_dir / "src" / sha[:12]
    if not (dest / "fastchat_api" / "__init__.py").exists():
        tmp = Path(tempfile.mkdtemp(prefix=".src-", dir=work_dir))
        archive = subprocess.run(["git", "archive", "--format=tar", sha, "fastchat_api", "config"],
                                 cwd=ROOT, capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    return dest, sha


def version_of(source: Path) -> str:
    """``fastchat_api.__version__`` in ``source``, without importing it."""
    match = re.search(r'__version__ = "([^"]+)"', (source / "fastchat_api" / "__init__.py").read_text())
    return match.group(1) if match else "?"


def git_commit() -> str:
    """The checkout's short commit, noting uncommitted changes in ``fastchat_api/``."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fastchat_api"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head + (" + uncommitted changes in fastchat_api/" if dirty else "")
