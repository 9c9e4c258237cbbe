"""Model downloads from the Hugging Face hub: the files a pipeline needs, fetched once, with progress.

A registry entry names a hub id; the first job (or ``atelier models pull``) downloads what diffusers
will load, and nothing else: the config files of every component and, for the components the bot
loads, safetensors weights only, in the half-precision variant where the repository has it for every
component (GPU hosts; half the bytes). Root-level single-file checkpoints, ``.bin`` and ``.ckpt``
duplicates are never fetched. Pipelines then load from the local snapshot folder, so a model that is
already cached costs no request at all: a manifest beside the hub's cache records what a complete
download holds.

The hub client's own settings apply (``HF_ENDPOINT``, ``HF_HOME``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``);
nothing here changes them. Progress goes to log lines (percent, MB/s) and to whatever listener the
calling thread registered (inference/hub_progress.py; the device worker forwards it to the member's message).
Failures become `ModelUnavailable` subclasses that say why in words a member and an operator can act on.

No torch import: the CLI and the bot's failure messages use this module.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.hub_progress import Tracker, local

log = logging.getLogger(__name__)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Weight files diffusers and transformers load: <stem>[.<variant>][-NNNNN-of-NNNNN].safetensors and the
# shard index <stem>.safetensors.index[.<variant>].json.
_WEIGHTS = re.compile(r"^(?P<stem>diffusion_pytorch_model|model)(?:\.(?P<variant>[A-Za-z0-9_]+))?"
                      r"(?:-\d{5}-of-\d{5})?\.safetensors$")
_INDEX = re.compile(r"^(?P<stem>diffusion_pytorch_model|model)\.safetensors\.index(?:\.(?P<variant>[A-Za-z0-9_]+))?\.json$")
_OTHER_WEIGHTS = (".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx", ".safetensors")
_CONFIG_SUFFIXES = (".json", ".txt", ".model")
# Components the bot passes as None (image moderation is the moderation package's job): their weights
# (the SD safety checker is ~1.2 GB) are never downloaded.
SKIPPED_WEIGHTS: dict[str, tuple[str, ...]] = {
    "sd15": ("safety_checker",),
    "sd2": ("safety_checker",),
    "sd15-inpaint": ("safety_checker",),
    "deepfloyd-if": ("safety_checker", "watermarker"),
}


# ----- why a model is not available -----


class ModelUnavailable(Exception):
    """A model's files could not be fetched. ``member_message`` is safe to show anyone; ``detail`` (the
    exception's text) is for the operator's log and the CLI."""

    kind = "downloading"

    def __init__(self, model: str, repo: str, reason: str, detail: str = "") -> None:
        self.model = model
        self.repo = repo
        self.reason = reason
        self.detail = detail or reason
        super().__init__(f"{model} ({repo}): {reason}" + (f" ({detail})" if detail and detail != reason else ""))

    @property
    def member_message(self) -> str:
        return f"{self.model} could not be downloaded: {self.reason}."


class GatedModel(ModelUnavailable):
    """401/403: a gated or private repository this machine's token may not read."""

    kind = "gated"

    @property
    def licence_page(self) -> str:
        return f"{_endpoint()}/{self.repo}"

    @property
    def member_message(self) -> str:
        return (f"{self.model} is a gated model: the bot's owner must accept its licence at {self.licence_page} "
                "and give the bot a token of that account in HF_TOKEN.")


class HubUnreachable(ModelUnavailable):
    """The hub did not answer, or the connection dropped and did not come back."""

    kind = "network"

    @property
    def member_message(self) -> str:
        return f"{self.model} could not be downloaded: the model hub could not be reached; try again in a few minutes."


# ----- what to download -----


def is_hub_id(source: str) -> bool:
    """A hub repository id ("org/name"), not a local path."""
    return bool(_REPO_ID.match(source)) and not Path(source).exists()


def preferred_variant(variant: str | None, device: str) -> str | None:
    """The weight variant to prefer: the entry's own, else fp16 on accelerators (halves download and load
    time; the engine casts to its dtype anyway), none on CPU, which computes in float32."""
    if variant:
        return str(variant)
    return None if device.split(":")[0] == "cpu" else "fp16"


def skipped_weights(spec: Any) -> tuple[str, ...]:
    """Components whose weights the bot never loads for ``spec`` (passed as None, or replaced by a file)."""
    skipped = SKIPPED_WEIGHTS.get(spec.kind, ())
    return (*skipped, "unet") if spec.extra.get("unet_file") else skipped


def plan_files(names: dict[str, int], model_index: dict[str, Any] | None, *, variant: str | None,
               skip_weights: Iterable[str] = ()) -> tuple[list[str], str | None]:
    """Which of a repository's files (name -> size) a pipeline load needs, and the variant they are in.

    A pipeline repository (``model_index.json``) is read component by component; any other repository
    (a ControlNet) is one component at its root. The variant is used when every component that has
    weights has them in it; otherwise the plain files (and the variant is None).
    """
    if model_index is not None:
        folders = [k for k, v in model_index.items()
                   if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0] is not None]
    else:
        folders = [""]
    skip = set(skip_weights)
    wanted = ["model_index.json"] if "model_index.json" in names else []
    weights: dict[str, dict[str | None, list[str]]] = {}
    for folder in folders:
        prefix = f"{folder}/" if folder else ""
        inside = [n[len(prefix):] for n in names if n.startswith(prefix) and "/" not in n[len(prefix):]]
        for name in inside:
            index = _INDEX.match(name)
            if name.endswith(_CONFIG_SUFFIXES) and not index:
                wanted.append(prefix + name)
            elif folder not in skip:
                match = _WEIGHTS.match(name) or index
                if match is not None:
                    weights.setdefault(folder, {}).setdefault(match["variant"], []).append(prefix + name)
                elif name.endswith(_OTHER_WEIGHTS) and folder:
                    weights.setdefault(folder, {})
    order = [variant, None] if variant else [None, "fp16"]
    for choice in order:
        if all(choice in found for found in weights.values()):
            return wanted + [f for found in weights.values() for f in found[choice]], choice
    missing = sorted(f or "the repository's root" for f, found in weights.items() if not found)
    raise ValueError(f"no safetensors weights for {', '.join(missing) or 'every component'}")


def pipeline_folder(model: str, source: str, *, device: str, variant: str | None = None,
                    skip_weights: Iterable[str] = ()) -> tuple[str, str | None]:
    """What a pipeline's ``from_pretrained`` should read, and the variant to pass: a hub id becomes its
    downloaded snapshot folder; a local folder stays as it is, with the entry's variant on accelerators."""
    if not is_hub_id(source):
        return source, (variant if variant and device.split(":")[0] != "cpu" else None)
    folder, chosen = fetch_pipeline(model, source, variant=preferred_variant(variant, device), skip_weights=skip_weights)
    return str(folder), chosen


@dataclass(frozen=True)
class Download:
    """One thing a model needs from the hub: a pipeline (or single-model) repository, or one file of one."""

    repo: str
    filename: str | None = None
    variant: str | None = None
    skip_weights: tuple[str, ...] = ()

    def cached(self) -> bool:
        if self.filename is not None:
            from huggingface_hub import try_to_load_from_cache

            return isinstance(try_to_load_from_cache(self.repo, self.filename), str)
        return cached_pipeline(self.repo, variant=self.variant, skip_weights=self.skip_weights) is not None

    def fetch(self, model: str) -> Path:
        if self.filename is not None:
            return fetch_file(model, self.repo, self.filename)
        return fetch_pipeline(model, self.repo, variant=self.variant, skip_weights=self.skip_weights)[0]


def downloads_for(spec: Any, device: str) -> list[Download]:
    """What the engine would fetch from the hub to serve ``spec`` on ``device`` (nothing for local files);
    ``atelier models pull`` fetches exactly this, and ``atelier doctor`` checks it is cached."""
    variant = preferred_variant(spec.extra.get("variant"), device)
    found: list[Download] = []
    if spec.kind in ("caption", "tagger", "ip-adapter"):  # /describe and image prompts: full precision files
        if not is_hub_id(spec.source):
            return []
        if spec.kind == "caption":
            return [Download(spec.source)]
        return [Download(spec.source, name) for name in helper_files(spec)]
    if spec.kind == "esrgan":
        if spec.extra.get("file") and is_hub_id(spec.source):
            found.append(Download(spec.source, str(spec.extra["file"])))
        return found
    if is_hub_id(spec.source):
        found.append(Download(spec.source, variant=variant, skip_weights=skipped_weights(spec)))
    unet_repo = str(spec.extra.get("unet_repo", ""))
    if spec.extra.get("unet_file") and is_hub_id(unet_repo):
        found.append(Download(unet_repo, str(spec.extra["unet_file"])))
    stage_2 = str(spec.extra.get("stage_2", ""))
    if is_hub_id(stage_2):  # DeepFloyd IF's second stage reuses the first stage's text encoder
        found.append(Download(stage_2, variant=variant, skip_weights=("text_encoder", "safety_checker", "watermarker")))
    return found


def helper_files(spec: Any) -> list[str]:
    """The files a ``tagger`` (WD14: ONNX model and tag list) or an ``ip-adapter`` entry (weights and
    CLIP image encoder, h94/IP-Adapter's layout) reads from its repository."""
    if spec.kind == "tagger":
        return ["model.onnx", "selected_tags.csv"]
    prefix = f"{spec.extra['subfolder']}/" if spec.extra.get("subfolder") else ""
    encoder = str(spec.extra.get("image_encoder", f"{prefix}image_encoder"))
    return [prefix + str(spec.extra.get("weight_name", "ip-adapter.safetensors")), f"{encoder}/config.json",
            f"{encoder}/model.safetensors"]


# ----- the cache -----


def _constants() -> Any:
    from huggingface_hub import constants

    return constants


def _endpoint() -> str:
    return str(_constants().ENDPOINT).rstrip("/")


def _repo_folder(repo: str) -> Path:
    return Path(_constants().HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"


def _manifest(repo: str, variant: str | None) -> Path:
    return _repo_folder(repo) / f"atelier-{variant or 'default'}.json"


def cached_pipeline(repo: str, *, variant: str | None, skip_weights: Iterable[str] = ()) -> tuple[Path, str | None] | None:
    """The complete local snapshot of ``repo`` and its variant, as a download recorded it; None when a
    file is missing. Reads the disk only."""
    try:
        record = json.loads(_manifest(repo, variant).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    snapshot = _repo_folder(repo) / "snapshots" / str(record.get("revision", ""))
    if not set(record.get("skip", [])) <= set(skip_weights):
        return None
    if not all((snapshot / name).is_file() for name in record.get("files", [])):
        return None
    return snapshot, record.get("variant")


def _offline_snapshot(model: str, repo: str, variant: str | None) -> tuple[Path, str | None]:
    """With downloads off, whatever snapshot the cache holds (another tool may have fetched it)."""
    try:
        revision = (_repo_folder(repo) / "refs" / "main").read_text().strip()
    except OSError:
        revision = ""
    snapshot = _repo_folder(repo) / "snapshots" / revision
    if not revision or not snapshot.is_dir():
        raise ModelUnavailable(model, repo, "it is not in this machine's model cache and downloads are turned off",
                               f"{repo} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; run "
                               f"`hf download {repo}` on a connected machine (or point source at a folder)")
    has_variant = variant is not None and any(snapshot.rglob(f"*.{variant}*.safetensors"))
    return snapshot, variant if has_variant else None


def fetch_pipeline(model: str, repo: str, *, variant: str | None, skip_weights: Iterable[str] = ()) -> tuple[Path, str | None]:
    """The local folder holding what a pipeline load of ``repo`` needs, downloading what is missing;
    returns it with the variant to load (None: the plain files)."""
    skip = tuple(skip_weights)
    cached = cached_pipeline(repo, variant=variant, skip_weights=skip)
    if cached is not None:
        return cached
    if _constants().is_offline_mode():
        return _offline_snapshot(model, repo, variant)
    from huggingface_hub import HfApi, hf_hub_download

    with classified(model, repo):
        info = HfApi().model_info(repo, files_metadata=True)
        sizes = {s.rfilename: int(s.size or 0) for s in info.siblings or []}
        first = "model_index.json" if "model_index.json" in sizes else "config.json"
        # The first file with the default revision, so refs/main records the commit for offline starts.
        index_path = hf_hub_download(repo, first)
        model_index = json.loads(Path(index_path).read_text(encoding="utf-8")) if first == "model_index.json" else None
        try:
            files, chosen = plan_files(sizes, model_index, variant=variant, skip_weights=skip)
        except ValueError as exc:
            raise ModelUnavailable(model, repo, f"its repository has {exc}; Atelier loads safetensors only") from None
        snapshot = Path(index_path).parent
        _download(model, repo, info.sha or "main", files, sizes)
    _manifest(repo, variant).write_text(json.dumps({"revision": snapshot.name, "variant": chosen, "files": files,
                                                    "skip": list(skip)}), encoding="utf-8")
    return snapshot, chosen


def fetch_file(model: str, repo: str, filename: str) -> Path:
    """One file of a repository (an upscaler's weights, a distilled UNet), downloaded on first use."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename)
    if isinstance(found, str):
        return Path(found)
    if _constants().is_offline_mode():
        raise ModelUnavailable(model, repo, "it is not in this machine's model cache and downloads are turned off",
                               f"{repo}/{filename} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                               f"run `hf download {repo} {filename}` on a connected machine")
    from huggingface_hub import HfApi

    with classified(model, repo):
        info = HfApi().model_info(repo, files_metadata=True)
        sizes = {s.rfilename: int(s.size or 0) for s in info.siblings or []}
        if filename not in sizes:
            raise ModelUnavailable(model, repo, f"its repository has no file {filename}")
        path = hf_hub_download(repo, filename, tqdm_class=_start(model, [filename], sizes, repo, None).bar_class())
        _finish(model)
    return Path(path)


def _start(model: str, files: list[str], sizes: dict[str, int], repo: str, revision: str | None) -> Tracker:
    from huggingface_hub import try_to_load_from_cache

    have = [f for f in files if isinstance(try_to_load_from_cache(repo, f, revision=revision), str)]
    total = sum(sizes.get(f, 0) for f in files)
    tracker = Tracker(model, total, done=sum(sizes.get(f, 0) for f in have))
    local.tracker = tracker
    log.info("downloading %s from %s: %d files, %.2f GB", model, repo, len(files) - len(have),
             (total - tracker.done) / 1e9)
    tracker.add(0, final=True)  # the member sees "Loading ... for the first time" before the first byte
    return tracker


def _finish(model: str) -> None:
    tracker: Tracker | None = getattr(local, "tracker", None)
    local.tracker = None
    if tracker is not None:
        tracker.done = max(tracker.done, tracker.total)
        tracker.add(0, final=True)


def _download(model: str, repo: str, revision: str, files: list[str], sizes: dict[str, int]) -> None:
    from huggingface_hub import hf_hub_download

    bar = _start(model, files, sizes, repo, revision).bar_class()
    for name in files:
        hf_hub_download(repo, name, revision=revision, tqdm_class=bar)
    _finish(model)


@contextlib.contextmanager
def classified(model: str, repo: str) -> Iterator[None]:
    """The hub client's and the network's exceptions as the failure a member is told about."""
    from huggingface_hub import errors

    try:
        yield
    except ModelUnavailable:
        raise
    except errors.GatedRepoError as exc:
        raise GatedModel(model, repo, "its licence has not been accepted", _first_line(exc)) from None
    except errors.RepositoryNotFoundError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            raise GatedModel(model, repo, "the hub refused access", _first_line(exc)) from None
        raise ModelUnavailable(model, repo, f"the hub has no repository {repo}", _first_line(exc)) from None
    except (errors.RevisionNotFoundError, errors.RemoteEntryNotFoundError) as exc:
        raise ModelUnavailable(model, repo, "a file of its repository is missing", _first_line(exc)) from None
    except errors.OfflineModeIsEnabled as exc:
        raise ModelUnavailable(model, repo, "downloads are turned off", _first_line(exc)) from None
    except errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", 0) or 0
        if status >= 500 or status in (408, 429):
            raise HubUnreachable(model, repo, "the hub is unavailable", _first_line(exc)) from None
        raise ModelUnavailable(model, repo, f"the hub answered {status}", _first_line(exc)) from None
    except errors.LocalEntryNotFoundError as exc:  # the hub could not be reached and the file is not cached
        raise HubUnreachable(model, repo, "the hub could not be reached", _first_line(exc.__cause__ or exc)) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelUnavailable(model, repo, "the disk of the model cache is full", _first_line(exc)) from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ModelUnavailable(model, repo, "the model cache cannot be written", _first_line(exc)) from None
        raise HubUnreachable(model, repo, "the connection to the hub failed", _first_line(exc)) from None
    except Exception as exc:
        if _is_network(exc):
            raise HubUnreachable(model, repo, "the connection to the hub failed", _first_line(exc)) from None
        raise
    finally:
        local.tracker = None


def _is_network(exc: BaseException) -> bool:
    try:
        import httpx2
    except ImportError:  # older hub clients use requests
        return isinstance(exc, ConnectionError | TimeoutError)
    return isinstance(exc, httpx2.TransportError | ConnectionError | TimeoutError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
