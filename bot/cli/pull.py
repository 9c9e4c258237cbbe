"""``atelier models pull [NAME...]``: download models ahead of their first job, with a progress bar.

The same downloads the engine would make (inference/hub.py), into the same cache (``HF_HOME``), with the
same token (``HF_TOKEN``); a failure prints the sentence a member would read, and the detail.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from inference import hub, hub_progress
from inference.models import ModelRegistry, ModelSpec, UnknownModel

BAR = 30


class ProgressBar:
    """One line redrawn in place on a terminal; elsewhere (logs, pipes) a line every 10 %."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last_decile = -1
        self._drawn = 0.0

    def __call__(self, event: hub_progress.DownloadProgress) -> None:
        filled = int(BAR * event.percent / 100)
        line = (f"{event.model}: [{'#' * filled}{'.' * (BAR - filled)}] {event.percent:3.0f}% "
                f"{event.done / 1e9:.2f} / {event.total / 1e9:.2f} GB {event.rate / 1e6:.1f} MB/s")
        if self.tty:
            if time.monotonic() - self._drawn >= 0.2 or event.done >= event.total:
                self._drawn = time.monotonic()
                self.out.write("\r" + line + ("\n" if event.done >= event.total else ""))
                self.out.flush()
            return
        decile = int(event.percent // 10)
        if decile != self._last_decile:
            self._last_decile = decile
            print(line, file=self.out, flush=True)


def with_dependencies(registry: ModelRegistry, names: list[str]) -> list[ModelSpec]:
    """The named models and the registry models they draw with (a ControlNet's base, IF's third stage, an
    SD entry's dedicated inpainting model, a captioner's tagger)."""
    specs: list[ModelSpec] = []
    queue = list(names)
    while queue:
        spec = registry.get(queue.pop(0))
        if spec not in specs:
            specs.append(spec)
            queue += [str(spec.extra[key]) for key in ("base", "stage_3", "inpaint", "tagger") if spec.extra.get(key) in registry]
    return specs


def pull(registry: ModelRegistry, names: list[str], device: str, out: TextIO = sys.stdout) -> int:
    """Download ``names`` (the default model when empty); 0 when every one is in the cache afterwards."""
    try:
        specs = with_dependencies(registry, names or [registry.default_name])
    except UnknownModel as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = 0
    for spec in specs:
        downloads = hub.downloads_for(spec, device)
        if not downloads:
            print(f"{spec.name}: local files ({spec.source}), nothing to download", file=out)
            continue
        try:
            with hub_progress.reporting(ProgressBar(out)):
                for download in downloads:
                    was_cached = download.cached()
                    path = download.fetch(spec.name)
                    state = "already cached" if was_cached else "downloaded"
                    print(f"{spec.name}: {download.repo}{'/' + download.filename if download.filename else ''} "
                          f"{state} ({path})", file=out)
        except hub.ModelUnavailable as exc:
            print(f"error: {exc.member_message}\n  detail: {exc.detail}", file=sys.stderr)
            status = 1
    return status
