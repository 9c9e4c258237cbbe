"""scripts/run: installs once, reinstalls only when pyproject.toml changed, starts with the package index
unreachable, and says how to put `atelier` on PATH. pip and atelier are stand-ins recording their calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of scripts/run and pyproject.toml with a .venv whose pip and atelier only log their arguments."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run", tmp_path / "scripts" / "run")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    scripts = {
        "python": f'case "$*" in *"import torch"*) exit 0;; esac\nexec {sys.executable} "$@"',  # torch: "installed"
        "activate": 'export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd):$PATH"',
        # The index is reachable unless FAKE_INDEX_DOWN is set; an install puts `atelier` in place.
        "pip": 'echo "pip $*" >> "$CALLS"; [ -z "${FAKE_INDEX_DOWN:-}" ] || exit 1\n'
               'case "$*" in *-e*) printf \'#!/bin/sh\\necho "atelier $*" >> "$CALLS"\\n\' > "$(dirname "$0")/atelier"; '
               'chmod +x "$(dirname "$0")/atelier";; esac',
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return tmp_path


def _run(checkout: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = checkout / "calls.log"
    calls.write_text("")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if ".venv" not in p)
    result = subprocess.run(["bash", str(checkout / "scripts" / "run"), "--flag"], capture_output=True, text=True,
                            timeout=120, env={"PATH": path, "HOME": str(checkout), "CALLS": str(calls), **env})
    return result, calls.read_text().splitlines()


def test_installs_once_then_starts_without_the_index(checkout: Path) -> None:
    first, calls = _run(checkout)
    assert first.returncode == 0, first.stderr
    assert any(c.startswith("pip install") and "-e .[postgres]" in c for c in calls) and calls[-1] == "atelier run --flag"
    assert "source .venv/bin/activate" in first.stderr  # how to get `atelier` on PATH

    again, calls = _run(checkout, FAKE_INDEX_DOWN="1")  # nothing changed: pip is not even asked
    assert again.returncode == 0, again.stderr
    assert calls == ["atelier run --flag"] and "not reinstalling" in again.stderr


def test_a_change_with_the_index_unreachable_starts_the_installed_version(checkout: Path) -> None:
    assert _run(checkout)[0].returncode == 0
    with (checkout / "pyproject.toml").open("a") as f:
        f.write("\n# a dependency changed\n")
    result, calls = _run(checkout, FAKE_INDEX_DOWN="1")
    assert result.returncode == 0, result.stderr
    assert "could not install from the package index" in result.stderr and calls[-1] == "atelier run --flag"


def test_nothing_installed_and_no_index_is_one_clear_error(checkout: Path) -> None:
    result, calls = _run(checkout, FAKE_INDEX_DOWN="1")
    assert result.returncode == 1 and "package index cannot be reached and nothing is installed yet" in result.stderr
    assert not any(c.startswith("atelier") for c in calls)
