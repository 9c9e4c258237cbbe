"""Jobs made from a finished result: variations (V buttons), upscales (U buttons, 🔍),
animations (Animate, 🎬) and canvas edits (Zoom Out, the pan arrows, Vary (Region)). Reads the
parent job and its image, refuses what that result can't take, and submits the child job built by
bot/params (images.py, animate.py, canvas.py)."""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from bot.errors import InvalidOption, UnknownJob
from bot.params import animate, canvas, images, styles, wildcards
from bot.services.imagine_checks import MAX_PROMPT, check_embeddings, embeddings_in
from bot.services.jobs import JobService, Origin, Ticket
from db.models import Job, Output
from db.repositories import jobs as jobs_repo
from inference.limits import SEED_LIMIT
from inference.models import SD_KINDS, TEXT_TO_IMAGE_KINDS, ModelSpec

# Results a canvas edit takes: generated images, the edits themselves, and upscales of either
# (drawn with the model and prompt of the job the upscale came from).
CANVAS_COMMANDS = (*images.VARIABLE_COMMANDS, "edit")


def check_inpaints(spec: ModelSpec) -> None:
    """Refuse, before anything is queued, a model whose runner cannot redraw part of an image: canvas
    edits run on SD 1.5 and SDXL (inference/runners/sd.py); SD 2, SD 3 and DeepFloyd IF draw from text
    (and SD 2 from an image) only, and their jobs would fail once they reached the GPU."""
    if spec.kind not in SD_KINDS:
        raise InvalidOption(f"{spec.name} ({spec.kind}) can't redraw part of an image: Zoom Out, the pan arrows, "
                            "Vary (Region) and /edit work with SD 1.5 and SDXL models.")


def typed_prompt(prompt: str, seed: int, wildcards_dir: Path | None) -> dict[str, str]:
    """A prompt typed in the remix or Vary (Region) modal, as /imagine takes one: its ``{a|b}`` variants
    and ``__wildcards__`` resolved with the new job's ``seed`` (the resolved text is what moderation
    screens at submission), the template kept as ``prompt_template`` so that a Reroll picks again. An
    unknown wildcard is refused (bot/params/wildcards.py). Reads wildcard files: off the loop."""
    resolved = wildcards.resolve(prompt, seed, wildcards_dir)
    if len(resolved) > MAX_PROMPT + styles.MAX_TEMPLATE:
        raise InvalidOption(f"With its wildcards the prompt is {len(resolved)} characters; the limit is "
                            f"{MAX_PROMPT + styles.MAX_TEMPLATE}. Pick fewer or shorter variants.")
    return {"prompt": resolved, **({"prompt_template": prompt} if resolved != prompt else {})}


class DerivedJobs:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    async def variation(self, *, job_id: int, index: int, strength: float, origin: Origin,
                        prompt: str | None = None) -> Ticket:
        """Image-to-image from image ``index`` of job ``job_id``, same prompt (or the remix modal's
        ``prompt``) and options, new seed."""
        parent, output = await self._parent_output(
            job_id, index, lambda job: None if job.command in images.VARIABLE_COMMANDS else
            f"Job #{job_id} is a /{job.command} result; only generated images can be varied.")
        if parent.params.get("model") not in self.jobs.registry.names():
            raise InvalidOption(f"The model {parent.params.get('model')!r} of job #{job_id} is no longer installed.")
        spec = self.jobs.registry.get(parent.params["model"])
        if prompt == parent.params.get("prompt"):
            prompt = None  # the modal sent back unchanged: the source's prompt, wildcards and embeddings stay

        def build() -> dict[str, Any]:
            params = images.variation(parent.params, output.data, job_id=job_id, index=index, strength=strength)
            return params if prompt is None else self._with_prompt(params, prompt, self.jobs.prompt_folders, spec)

        params = await asyncio.to_thread(build)
        return await self.jobs.submit(command=parent.command, params=params, origin=origin, parent_job_id=job_id)

    async def remix_reroll(self, *, job_id: int, prompt: str, origin: Origin) -> Ticket:
        """Reroll with Remix on: job ``job_id`` again with the modal's ``prompt`` and a new seed."""
        async with self.jobs.reads() as session:
            parent = await jobs_repo.get_job(session, job_id=job_id)
        if parent is None:
            raise UnknownJob(f"Job #{job_id} no longer exists (it may have been deleted).")
        if parent.params.get("model") not in self.jobs.registry.names():
            raise InvalidOption(f"The model {parent.params.get('model')!r} of job #{job_id} is no longer installed.")
        if prompt == parent.params.get("prompt"):  # unchanged: a plain Reroll (its wildcards pick again)
            return await self.jobs.reroll(job_id=job_id, origin=origin)
        params = await asyncio.to_thread(self._with_prompt, {**parent.params, "seed": secrets.randbelow(SEED_LIMIT)},
                                         prompt, self.jobs.prompt_folders, self.jobs.registry.get(parent.params["model"]))
        return await self.jobs.submit(command=parent.command, params=params, origin=origin, parent_job_id=job_id)

    async def upscale(self, *, job_id: int, index: int, scale: int, origin: Origin,
                      upscaler: str | None = None) -> Ticket:
        spec = images.upscaler_spec(self.jobs.registry, upscaler)
        parent, output = await self._parent_output(
            job_id, index, lambda job: f"Job #{job_id} is already an upscale." if job.command == "upscale" else None)
        params = await asyncio.to_thread(images.upscale_output, spec, output.data, scale, prompt=parent.prompt,
                                         seed=output.seed, job_id=job_id, index=index)
        return await self.jobs.submit(command="upscale", params=params, origin=origin, parent_job_id=job_id)

    async def animate(self, *, job_id: int, index: int, origin: Origin) -> Ticket:
        """Animate image ``index`` of a finished job with the video model's defaults."""
        spec = animate.video_spec(self.jobs.registry)
        parent, output = await self._parent_output(
            job_id, index, lambda job: None if job.command in animate.ANIMATABLE_COMMANDS else
            f"Job #{job_id} is a /{job.command} result; only images can be animated.")
        params = await asyncio.to_thread(animate.animate_output, spec, output.data, prompt=parent.prompt,
                                         job_id=job_id, index=index)
        return await self.jobs.submit(command="animate", params=params, origin=origin, parent_job_id=job_id)

    async def canvas(self, *, job_id: int, index: int, op: str, origin: Origin, prompt: str | None = None
                     ) -> Ticket:
        """Zoom Out (``op`` "zoom2", "zoom15") or a pan ("left", "right", "up", "down") of image
        ``index`` of job ``job_id``: its prompt (or ``prompt``, from the remix modal) and model, a new seed."""
        base, output, spec = await self.canvas_source(job_id, index)
        params = await asyncio.to_thread(self._canvas_params, base, output.data, op, spec,
                                         {"job_id": job_id, "index": index}, prompt, self.jobs.prompt_folders)
        return await self.jobs.submit(command="edit", params=params, origin=origin, parent_job_id=job_id)

    async def region(self, *, job_id: int, index: int, cells: list[int], prompt: str, origin: Origin) -> Ticket:
        """Vary (Region): the chosen grid cells of image ``index`` redrawn with ``prompt``."""
        chosen = canvas.check_cells(cells)
        base, output, spec = await self.canvas_source(job_id, index)

        def build() -> dict[str, Any]:
            seed = secrets.randbelow(SEED_LIMIT)
            typed = typed_prompt(prompt, seed, self.jobs.prompt_folders[0])
            used = embeddings_in(self._embeddings_dir, typed["prompt"], str(base.get("negative_prompt", "")))
            check_embeddings(self._embeddings_dir, used, spec)
            with Image.open(io.BytesIO(output.data)) as opened:
                edit = canvas.region(opened.convert("RGB"), chosen)
            return {**canvas.inpaint_params(base, edit, spec=spec, strength=canvas.REGION_STRENGTH, seed=seed,
                                            source={"job_id": job_id, "index": index}, prompt=typed["prompt"],
                                            embeddings=used), **typed}

        params = await asyncio.to_thread(build)
        return await self.jobs.submit(command="edit", params=params, origin=origin, parent_job_id=job_id)

    async def region_preview(self, *, job_id: int, index: int, cells: list[int]) -> bytes:
        """The image behind a Vary (Region) menu with its grid, ``cells`` outlined (PNG)."""
        _, output, _ = await self.canvas_source(job_id, index)
        return await asyncio.to_thread(canvas.region_preview, output.data, cells)

    async def source_prompt(self, job_id: int) -> str:
        """The prompt a canvas edit of job ``job_id`` starts from (what the remix modal shows)."""
        base, _, _ = await self.canvas_source(job_id, None)
        return str(base.get("prompt", ""))

    @property
    def _embeddings_dir(self) -> Path | None:
        return self.jobs.prompt_folders[1]

    @staticmethod
    def _with_prompt(params: dict[str, Any], prompt: str, folders: tuple[Path | None, Path | None], spec: ModelSpec
                     ) -> dict[str, Any]:
        """``params`` with the member's own ``prompt`` (the remix modal) in place of the source's, and
        without what was made from the source's: its wildcard template (a Reroll would otherwise draw the
        source's prompt again) and its embeddings, which become those the new prompt and the negative use
        (refused when ``spec`` can't take them). The typed prompt's own ``{a|b}`` and ``__wildcards__``
        are resolved with the new job's seed, as /imagine does (``folders``: wildcards, embeddings).
        (Reads the wildcard and embeddings folders: off the loop.)"""
        wildcards_dir, embeddings_dir = folders
        params = {key: value for key, value in params.items() if key not in ("prompt_template", "embeddings")}
        typed = typed_prompt(prompt, int(params["seed"]), wildcards_dir)
        used = embeddings_in(embeddings_dir, typed["prompt"], str(params.get("negative_prompt", "")))
        check_embeddings(embeddings_dir, used, spec)
        return {**params, **typed, **({"embeddings": used} if used else {})}

    @staticmethod
    def _canvas_params(base: dict[str, Any], png: bytes, op: str, spec: ModelSpec,
                       source: dict[str, Any], prompt: str | None, folders: tuple[Path | None, Path | None]
                       ) -> dict[str, Any]:
        """(Off the loop: images are encoded, a new prompt's wildcards resolved with the new seed and its
        embeddings looked up in their folder.)"""
        wildcards_dir, embeddings_dir = folders
        edit = canvas.apply(op, png)
        seed = secrets.randbelow(SEED_LIMIT)
        typed = typed_prompt(prompt, seed, wildcards_dir) if prompt is not None else {}
        used = embeddings_in(embeddings_dir, typed["prompt"], str(base.get("negative_prompt", ""))) if typed \
            else None
        check_embeddings(embeddings_dir, used or [], spec)
        params = canvas.inpaint_params(base, edit, spec=spec, strength=canvas.BORDER_STRENGTH, source=source,
                                       prompt=typed.get("prompt"), embeddings=used, seed=seed)
        return {**params, **typed}

    async def canvas_source(self, job_id: int, index: int | None) -> tuple[dict[str, Any], Output, ModelSpec]:
        """(the generation parameters a canvas edit of job ``job_id`` draws with, its image ``index``,
        the model). An upscale draws with the parameters of the job it enlarged."""
        parent, output = await self._parent_output(
            job_id, index or 0, lambda job: None if job.command in CANVAS_COMMANDS or (
                job.command == "upscale" and "job_id" in (job.params.get("source") or {})) else
            f"Job #{job_id} is a /{job.command} result; only generated images and their upscales can be "
            "zoomed, panned or redrawn. Use /edit with a mask for your own image.")
        base = parent.params
        if parent.command == "upscale":
            source_id = int(parent.params["source"]["job_id"])
            async with self.jobs.reads() as session:
                source = await jobs_repo.get_job(session, job_id=source_id)
            if source is None:
                raise UnknownJob(f"Job #{source_id}, which job #{job_id} upscaled, no longer exists; its prompt and "
                                 "model are gone. Use /edit with a mask instead.")
            base = source.params
        model = base.get("model")
        spec = self.jobs.registry.get(model) if model in self.jobs.registry.names() else None
        if spec is not None and spec.base:  # a /pose result: its base model redraws it, without the skeleton
            model = spec.base
            spec = self.jobs.registry.get(model) if model in self.jobs.registry.names() else None
            base = {**base, "model": model}
        if spec is None or spec.kind not in TEXT_TO_IMAGE_KINDS:
            raise InvalidOption(f"The model {model!r} of job #{job_id} is no longer installed (or can't redraw "
                                "images), so its image can't be edited.")
        check_inpaints(spec)
        return base, output, spec

    async def _parent_output(self, job_id: int, index: int, refuse: Callable[[Job], str | None]) -> tuple[Job, Output]:
        """Job ``job_id`` and its image ``index``. Refuses a deleted job, then whatever ``refuse`` names
        (the kind of result this work does not take), then an image the job does not have."""
        async with self.jobs.reads() as session:
            parent = await jobs_repo.get_job(session, job_id=job_id)
            outputs = await jobs_repo.get_outputs(session, job_id=job_id) if parent is not None else []
        if parent is None:
            raise UnknownJob(f"Job #{job_id} no longer exists (it may have been deleted).")
        refusal = refuse(parent)
        if refusal is not None:
            raise InvalidOption(refusal)
        output = next((o for o in outputs if o.index == index), None)
        if output is None:
            raise InvalidOption(f"Job #{job_id} has no image {index + 1}.")
        return parent, output
