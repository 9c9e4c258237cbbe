"""A debug hook for a bench's child process (the bot or a worker): memory and event-loop lag on request.

Loaded by bench/bot_process.py when BENCH_INSTRUMENT names this file, before the process starts
its event loop; nothing in the bot knows about it. It listens on the Unix socket BENCH_PROBE_SOCKET
and answers one JSON line per request line:

- ``stats``: resident memory (/proc/self/status), glibc's malloc totals (mallinfo2: bytes in use
  and bytes free inside the arenas), Python's allocated blocks, gc-tracked and frozen object
  counts, and the event loop's lag since the previous ``stats`` (max and p99 of probes sent every
  50 ms from a thread with ``call_soon_threadsafe``: how long a ready callback waited to run).
- ``types``: after a full collection, the 40 most numerous types of gc-tracked objects.
- ``trim``: ``malloc_trim(0)`` and the resident memory before and after (is the growth free
  memory glibc kept, or live memory?).
- ``tracemalloc``: the 25 source lines whose allocations grew most since the previous call
  (only with BENCH_TRACEMALLOC=1, which starts tracing at start-up and slows the process).
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import ctypes.util
import gc
import json
import os
import socket
import sys
import threading
import time
from typing import Any

PROBE_INTERVAL = 0.05
REQUESTS = ("stats", "types", "trim", "tracemalloc")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):  # not glibc (or older than 2.33)
        return None


class Probe:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lags: list[float] = []
        self.libc = _libc()
        self.snapshot: Any = None
        self._lock = threading.Lock()

    # ----- event-loop lag -----

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        # The newest loop that is still open: start-up checks run on short-lived loops of their own
        # (asyncio.run) before the bot's or the worker's loop exists.
        if self.loop is None or self.loop.is_closed():
            self.loop = loop

    def _lag_forever(self) -> None:
        while True:
            time.sleep(PROBE_INTERVAL)
            loop = self.loop
            if loop is None or loop.is_closed():
                continue
            sent = time.perf_counter()
            try:
                loop.call_soon_threadsafe(self._arrived, sent)
            except RuntimeError:  # closed meanwhile
                continue

    def _arrived(self, sent: float) -> None:
        with self._lock:
            self.lags.append(time.perf_counter() - sent)

    # ----- requests -----

    def stats(self) -> dict[str, Any]:
        with self._lock:
            lags, self.lags = sorted(self.lags), []
        fields: dict[str, int] = {}
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                    fields[key] = int(value.split()[0]) * 1024
        out: dict[str, Any] = {
            "rss": fields.get("VmRSS", 0), "rss_anon": fields.get("RssAnon", 0), "hwm": fields.get("VmHWM", 0),
            "blocks": sys.getallocatedblocks(), "gc_objects": len(gc.get_objects()),
            "frozen": gc.get_freeze_count(), "threads": threading.active_count(),
            "lag_max": lags[-1] if lags else None,
            "lag_p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None,
            "lag_n": len(lags),
        }
        if self.libc is not None:
            info = self.libc.mallinfo2()
            out.update(malloc_used=info.uordblks + info.hblkhd, malloc_free=info.fordblks, malloc_mmap=info.hblkhd)
        return out

    def types(self) -> list[tuple[str, int]]:
        gc.collect()
        counts = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
        return counts.most_common(40)

    def trim(self) -> dict[str, int]:
        before = self.stats()["rss"]
        if self.libc is not None:
            self.libc.malloc_trim(0)
        return {"before": before, "after": self.stats()["rss"]}

    def tracemalloc(self) -> list[str]:
        import tracemalloc

        if not tracemalloc.is_tracing():
            return ["tracemalloc is off (BENCH_TRACEMALLOC=1)"]
        snapshot = tracemalloc.take_snapshot()
        previous, self.snapshot = self.snapshot, snapshot
        if previous is None:
            return [str(s) for s in snapshot.statistics("lineno")[:25]]
        return [str(s) for s in snapshot.compare_to(previous, "lineno")[:25]]

    def _serve(self, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(4)
        while True:
            conn, _ = server.accept()
            with conn, conn.makefile("rwb") as stream:
                for line in stream:
                    request = line.decode().strip()
                    try:
                        if request not in REQUESTS:
                            raise ValueError(f"unknown request {request!r}; one of {REQUESTS}")
                        reply: Any = getattr(self, request)()
                    except Exception as exc:  # the bench prints it
                        reply = {"error": f"{type(exc).__name__}: {exc}"}
                    stream.write(json.dumps(reply).encode() + b"\n")
                    stream.flush()

    def start(self, path: str) -> None:
        threading.Thread(target=self._lag_forever, name="bench-probe-lag", daemon=True).start()
        threading.Thread(target=self._serve, args=(path,), name="bench-probe", daemon=True).start()


def install() -> Probe:
    """Wrap the loop factories the bot (uvloop) and the worker (asyncio.run) use, and start serving."""
    probe = Probe()
    if os.environ.get("BENCH_TRACEMALLOC"):
        import tracemalloc

        tracemalloc.start(int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "1")))

    def watched(factory: Any) -> Any:
        def new_loop(*args: Any, **kwargs: Any) -> Any:
            loop = factory(*args, **kwargs)
            probe.watch(loop)
            return loop
        return new_loop

    asyncio.events.new_event_loop = watched(asyncio.events.new_event_loop)
    try:
        import uvloop

        uvloop.new_event_loop = watched(uvloop.new_event_loop)
    except ImportError:
        pass
    probe.start(os.environ["BENCH_PROBE_SOCKET"])
    return probe


class ProbeClient:
    """The bench's side: one request, one JSON answer."""

    def __init__(self, path: str) -> None:
        self.path = path

    def ask(self, request: str, timeout: float = 60.0) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(self.path)
            conn.sendall(request.encode() + b"\n")
            with conn.makefile("rb") as stream:
                return json.loads(stream.readline())


if __name__ in ("__main__", "<run_path>"):  # runpy.run_path from bench/bot_process.py
    install()
