"""``atelier doctor``: what this host has and lacks to serve images, as a table an admin can act on.

Each check is ok, warn (works, but not as well as it could) or FAIL (blocks: the bot will not start, or the
default model cannot serve a job); the command exits 1 when any check FAILs. Nothing is changed: models are
not downloaded, the database is not migrated, and no secret is printed.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import StartupError
from bot.settings import Settings
from bot.startup import check_database, check_redis, describe
from inference import hub
from inference.models import ModelRegistry, ModelSpec, RegistryError

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_FREE_GB = 20.0  # room for a few more SDXL-class models


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str


def table(checks: list[Check]) -> str:
    width = max(len("CHECK"), *(len(c.name) for c in checks))
    lines = [f"{'CHECK':{width}}  STATUS  DETAIL"]
    lines += [f"{c.name:{width}}  {c.status:6}  {c.detail}" for c in checks]
    return "\n".join(lines)


def torch_checks(wanted: list[str] | None) -> tuple[list[Check], str]:
    """The torch build, its CUDA devices with their memory, and the device models would be fetched for."""
    from inference.telemetry import torch_build

    try:
        version, cuda, devices = torch_build()
    except Exception as exc:
        return [Check("torch", FAIL, f"cannot import torch: {describe(exc)}")], "cpu"
    checks = [Check("torch", OK, f"{version}, " + (f"CUDA {cuda} build" if cuda else "CPU-only build"))]
    count = len(devices)
    for index, (name, memory) in enumerate(devices):
        checks.append(Check(f"cuda:{index}", OK, f"{name}, {memory / 2**30:.1f} GiB"))
    asked = [d for d in wanted or [] if d.startswith("cuda")]
    if asked and not count:
        checks.append(Check("devices", FAIL, f"ATELIER_DEVICES names {', '.join(asked)} but torch sees no CUDA device"))
    elif not count:
        checks.append(Check("devices", WARN, "no CUDA device: images are made on the CPU (minutes each)"))
    device = (wanted or (["cuda:0"] if count else ["cpu"]))[0]
    return checks, device


def model_check(spec: ModelSpec, device: str, *, default: bool) -> tuple[Check, int]:
    """One registry model: cached, missing (and how much it would download), gated or bad; the bytes missing."""
    downloads = hub.downloads_for(spec, device)
    blocked = FAIL if default else WARN
    name = f"model {spec.name}" + (" (default)" if default else "")
    if not downloads:
        source = Path(spec.source)
        if source.exists():
            return Check(name, OK, f"local: {spec.source}"), 0
        return Check(name, blocked, f"bad: {spec.source} does not exist"), 0
    missing = [d for d in downloads if not d.cached()]
    if not missing:
        return Check(name, OK, "cached"), 0
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return Check(name, blocked, "missing, and HF_HUB_OFFLINE is set: `atelier models pull` on a connected host"), 0
    try:
        size = sum(_remote_size(spec.name, d) for d in missing)
    except hub.GatedModel as exc:
        return Check(name, blocked, f"gated: accept the licence at {exc.licence_page} and set HF_TOKEN"), 0
    except hub.HubUnreachable:
        return Check(name, WARN, "missing; the hub cannot be reached to check it"), 0
    except hub.ModelUnavailable as exc:
        return Check(name, blocked, f"bad: {exc.reason}"), 0
    return Check(name, WARN, f"missing: {size / 1e9:.1f} GB to download on first use (or `atelier models pull`)"), size


def _remote_size(model: str, download: hub.Download) -> int:
    """Bytes ``download`` would fetch, asked of the hub (also how access is checked: a gated repository's
    files answer 401/403 without an accepted licence)."""
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url

    with hub.classified(model, download.repo):
        info = HfApi().model_info(download.repo, files_metadata=True, timeout=10)
        sizes = {s.rfilename: int(s.size or 0) for s in info.siblings or []}
        probe = download.filename or ("model_index.json" if "model_index.json" in sizes else "config.json")
        get_hf_file_metadata(hf_hub_url(download.repo, probe, revision=info.sha), timeout=10)
        if download.filename is not None:
            return sizes.get(download.filename, 0)
        index = None
        if "model_index.json" in sizes:
            import json

            from huggingface_hub import hf_hub_download

            index = json.loads(Path(hf_hub_download(download.repo, "model_index.json")).read_text(encoding="utf-8"))
        try:
            files, _ = hub.plan_files(sizes, index, variant=download.variant, skip_weights=download.skip_weights)
        except ValueError as exc:
            raise hub.ModelUnavailable(model, download.repo, f"its repository has {exc}") from None
        return sum(sizes.get(f, 0) for f in files)


def service_checks(settings: Settings) -> list[Check]:
    checks = []
    url = settings.database
    sqlite_file = url.split(":///", 1)[1] if url.startswith("sqlite") and ":///" in url else None
    if sqlite_file is not None and not Path(sqlite_file).exists():
        checks.append(Check("database", OK, f"SQLite file {sqlite_file} not created yet (atelier run creates it)"))
    else:
        try:
            pending = asyncio.run(check_database(url))
        except StartupError as exc:
            checks.append(Check("database", FAIL, str(exc)))
        else:
            checks.append(Check("database", OK, "reachable, migrated") if not pending else
                          Check("database", WARN, f"reachable; {len(pending)} migrations to apply (atelier run "
                                                  "or atelier db upgrade applies them)"))
    if settings.redis_url is None:
        checks.append(Check("redis", OK, "not used: inference runs in the bot's process"))
    else:
        try:
            asyncio.run(check_redis(settings.redis_url.get_secret_value()))
            checks.append(Check("redis", OK, "reachable"))
        except StartupError as exc:
            checks.append(Check("redis", FAIL, str(exc)))
    token = settings.discord_token is not None and settings.discord_token.get_secret_value().strip()
    checks.append(Check("discord token", OK, "DISCORD_TOKEN is set") if token else
                  Check("discord token", FAIL, "DISCORD_TOKEN is not set"))
    from huggingface_hub import get_token

    checks.append(Check("hub token", OK, "HF_TOKEN (or a stored token) is set") if get_token() else
                  Check("hub token", WARN, "not set: gated models (SD 3, DeepFloyd IF) need HF_TOKEN"))
    return checks


def host_checks(missing_bytes: int) -> list[Check]:
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    need = max(MIN_FREE_GB * 1e9, missing_bytes)
    disk = Check("model cache disk", OK if free >= need else WARN,
                 f"{free / 1e9:.1f} GB free at {folder}" + ("" if free >= need else
                                                            f"; {need / 1e9:.1f} GB wanted for the missing models"))
    ffmpeg = _ffmpeg()
    video = (Check("ffmpeg", OK, ffmpeg) if ffmpeg else
             Check("ffmpeg", WARN, "missing: /animate posts GIFs; install the [video] extra for MP4"))
    return [disk, video]


def _ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:
        return shutil.which("ffmpeg")


def run(settings: Settings) -> tuple[list[Check], int]:
    """Every check, and the exit code (1 when something blocks)."""
    checks, device = torch_checks(settings.device_list)
    missing = 0
    try:
        registry = ModelRegistry.load(settings.models)
    except RegistryError as exc:
        checks.append(Check("models", FAIL, str(exc)))
    else:
        for spec in registry.specs():
            check, size = model_check(spec, device, default=spec.name == registry.default_name)
            checks.append(check)
            missing += size
    checks += service_checks(settings)
    checks += host_checks(missing)
    return checks, 1 if any(c.status == FAIL for c in checks) else 0


def main(settings: Settings, *, out: Any = None) -> int:
    checks, code = run(settings)
    print(table(checks), file=out)
    return code
