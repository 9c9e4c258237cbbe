"""`atelier run` and `atelier worker` keep freed image buffers from piling up in glibc's arenas."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Frees a 4 MiB mapped block (glibc then raises its mmap threshold above 4 MiB unless it is held
# fixed) and allocates another: does the second get a mapping of its own, returned when freed?
PROBE = """
import ctypes, sys
sys.path.insert(0, {root!r})

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    from bot.__main__ import tune_malloc
    print("applied" if tune_malloc() else "skipped")
first = bytearray(4 << 20)
del first
before = libc.mallinfo2().hblkhd
second = bytearray(4 << 20)
print("mapped" if libc.mallinfo2().hblkhd - before >= 4 << 20 else "heap")
"""


def _probe(mode: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    result = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT)), mode], env={**clean, **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture(autouse=True)
def _glibc() -> None:
    libc = ctypes.CDLL(None)
    if sys.platform != "linux" or not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc 2.33+ only")


def test_large_buffers_keep_their_own_mappings_after_tuning() -> None:
    assert _probe("plain") == ["heap"], "glibc no longer raises its threshold: the test proves nothing"
    assert _probe("tuned") == ["applied", "mapped"]


def test_the_operators_own_setting_wins() -> None:
    assert _probe("tuned", MALLOC_MMAP_THRESHOLD_=str(64 << 20)) == ["skipped", "heap"]
    assert _probe("tuned", GLIBC_TUNABLES="glibc.malloc.mmap_threshold=67108864")[0] == "skipped"
