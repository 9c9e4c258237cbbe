"""DerivedJobs: variations, upscales and animations of a finished result read their parent and
refuse what that result can't take, before any job exists."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.errors import InvalidOption, UnknownJob
from bot.services.derived import DerivedJobs
from bot.services.jobs import JobService, Origin
from db import migrate
from db.engine import create_engine, create_sessionmaker
from db.models import Job, JobStatus, Output
from db.repositories import jobs as jobs_repo
from db.repositories import users as users_repo
from inference.models import ModelRegistry
from tests.accounts.helpers import TOML, png

UPSCALER = """
[models.esrgan]
kind = "esrgan"
source = "/nonexistent.safetensors"
"""
VIDEO = """
[models.svd]
kind = "svd"
source = "/nonexistent"
steps = 2
guidance = 3.0
width = 64
height = 64
frames = 4
"""


@pytest.fixture
async def service_with(tmp_path):  # type: ignore[no-untyped-def]
    """A job service (no pool: nothing runs) over the models of a registry file's text."""
    engines = []

    async def build(toml: str) -> JobService:
        (tmp_path / "models.toml").write_text(toml)
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
        engines.append(engine)
        await migrate.upgrade(engine)
        return JobService(create_sessionmaker(engine), ModelRegistry.load(tmp_path / "models.toml"))

    yield build
    for engine in engines:
        await engine.dispose()


async def _finished(service: JobService, command: str = "imagine", images: int = 1) -> int:
    params = {"model": "fast", "prompt": "a teal square", "negative_prompt": "", "width": 32, "height": 32,
              "steps": 4, "guidance": 7.0, "seed": 5, "count": images, "scheduler": "euler"}
    async with service.sessions.begin() as session:
        await users_repo.ensure_user(session, user_id=1, name="member")
        job = await jobs_repo.create_job(session, job=Job(command=command, user_id=1, guild_id=2, channel_id=3,
                                                          model="fast", prompt="a teal square", seed=5, params=params,
                                                          status=JobStatus.completed))
        for index in range(images):
            session.add(Output(job_id=job.id, index=index, seed=5 + index, width=32, height=32, data=png(32, 32)))
    assert job.id is not None
    return job.id


async def _jobs(service: JobService) -> int:
    async with service.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Job)) or 0)


ORIGIN = Origin(user_id=1, guild_id=2, channel_id=3)


async def test_a_variation_is_image_to_image_from_the_chosen_image(service_with) -> None:  # type: ignore[no-untyped-def]
    service = await service_with(TOML)
    parent = await _finished(service, images=2)
    ticket = await DerivedJobs(service).variation(job_id=parent, index=1, strength=0.35, origin=ORIGIN)
    child = ticket.job
    assert child.command == "imagine" and child.parent_job_id == parent and child.prompt == "a teal square"
    assert child.params["task"] == "img2img" and child.params["strength"] == 0.35
    assert child.params["source"] == {"job_id": parent, "index": 1} and "init_image" in child.params["inputs"]


async def test_refusals_name_the_job_and_queue_nothing(service_with) -> None:  # type: ignore[no-untyped-def]
    service = await service_with(TOML + UPSCALER)
    derived = DerivedJobs(service)
    image = await _finished(service)
    upscale = await _finished(service, command="upscale")
    with pytest.raises(UnknownJob, match="Job #999 no longer exists"):
        await derived.variation(job_id=999, index=0, strength=0.7, origin=ORIGIN)
    with pytest.raises(InvalidOption, match=f"Job #{image} has no image 3"):
        await derived.variation(job_id=image, index=2, strength=0.7, origin=ORIGIN)
    with pytest.raises(InvalidOption, match=f"Job #{upscale} is a /upscale result; only generated images"):
        await derived.variation(job_id=upscale, index=0, strength=0.7, origin=ORIGIN)
    with pytest.raises(InvalidOption, match=f"Job #{upscale} is already an upscale"):
        await derived.upscale(job_id=upscale, index=0, scale=2, origin=ORIGIN)
    with pytest.raises(InvalidOption, match="No video model is installed"):
        await derived.animate(job_id=image, index=0, origin=ORIGIN)
    assert await _jobs(service) == 2


async def test_upscales_and_animations_keep_the_parent_prompt(service_with) -> None:  # type: ignore[no-untyped-def]
    service = await service_with(TOML + UPSCALER + VIDEO)
    derived = DerivedJobs(service)
    parent = await _finished(service)
    upscaled = (await derived.upscale(job_id=parent, index=0, scale=2, origin=ORIGIN)).job
    assert (upscaled.command, upscaled.model, upscaled.prompt) == ("upscale", "esrgan", "a teal square")
    assert (upscaled.params["width"], upscaled.params["height"], upscaled.seed) == (64, 64, 5)
    animated = (await derived.animate(job_id=parent, index=0, origin=ORIGIN)).job
    assert (animated.command, animated.model, animated.params["task"]) == ("animate", "svd", "img2vid")
    assert animated.parent_job_id == parent and animated.params["frames"] == 4


async def test_a_training_job_is_not_rerolled_or_rerun(service_with) -> None:  # type: ignore[no-untyped-def]
    """🔄 on a training sample, or Reroll/Rerun on an old /show of one, would train again past /train's
    checks (the server's rules, the name, consent): refused, nothing queued."""
    from bot.services.accounts import AccountService

    service = await service_with(TOML)
    async with service.sessions.begin() as session:
        await users_repo.ensure_user(session, user_id=1, name="member")
        job = await jobs_repo.create_job(session, job=Job(
            command="train", user_id=1, guild_id=2, channel_id=3, model="fast", prompt="zxq_rosie", seed=5,
            status=JobStatus.completed, params={"model": "fast", "prompt": "zxq_rosie", "task": "train", "seed": 5,
                                                "steps": 100, "width": 64, "height": 64, "count": 1}))
    before = await _jobs(service)
    with pytest.raises(InvalidOption, match=f"Job #{job.id} trained a LoRA; /train again"):
        await service.reroll(job_id=job.id, origin=ORIGIN)  # type: ignore[arg-type]
    with pytest.raises(InvalidOption, match=f"Job #{job.id} trained a LoRA"):
        await AccountService(service, default_daily=-1).rerun(job_id=job.id, origin=ORIGIN)  # type: ignore[arg-type]
    assert await _jobs(service) == before


async def test_a_remixed_prompt_survives_a_later_reroll(service_with) -> None:  # type: ignore[no-untyped-def]
    """The source's `{a|b}` template goes with a typed (remix) prompt: a reroll of the remixed result
    draws the typed prompt again, not a new pick from the source's variants."""
    service = await service_with(TOML)
    parent = await _finished(service)
    async with service.sessions.begin() as session:
        job = await jobs_repo.get_job(session, job_id=parent)
        job.params = {**job.params, "prompt_template": "a {teal|red} square"}
    derived = DerivedJobs(service)
    remixed = (await derived.remix_reroll(job_id=parent, prompt="a green circle", origin=ORIGIN)).job
    varied = (await derived.variation(job_id=parent, index=0, strength=0.7, origin=ORIGIN,
                                      prompt="a green circle")).job
    for child in (remixed, varied):
        assert child.params["prompt"] == "a green circle" and "prompt_template" not in child.params
    async with service.sessions.begin() as session:  # the remixed job finishes; someone rerolls it
        row = await jobs_repo.get_job(session, job_id=remixed.id)
        row.status = JobStatus.completed
    again = (await service.reroll(job_id=remixed.id, origin=ORIGIN)).job  # type: ignore[arg-type]
    assert again.params["prompt"] == "a green circle"
    plain = (await derived.variation(job_id=parent, index=0, strength=0.7, origin=ORIGIN)).job
    assert plain.params["prompt_template"] == "a {teal|red} square"  # without a typed prompt it stays


SD3 = """
[models.three]
kind = "sd3"
source = "/nonexistent"
steps = 2
guidance = 7.0
width = 64
height = 64
"""


async def test_canvas_edits_of_a_model_that_cannot_inpaint_are_refused_before_queueing(service_with) -> None:  # type: ignore[no-untyped-def]
    """SD 3 (like SD 2 and DeepFloyd IF) has no inpainting path: Zoom Out, pan and Vary (Region) on its
    result are refused at the button, not queued to fail on the GPU."""
    service = await service_with(TOML + SD3)
    parent = await _finished(service)
    async with service.sessions.begin() as session:
        job = await jobs_repo.get_job(session, job_id=parent)
        job.model, job.params = "three", {**job.params, "model": "three"}
    derived = DerivedJobs(service)
    before = await _jobs(service)
    with pytest.raises(InvalidOption, match=r"three \(sd3\) can't redraw part of an image"):
        await derived.canvas(job_id=parent, index=0, op="zoom2", origin=ORIGIN)
    with pytest.raises(InvalidOption, match="can't redraw part of an image"):
        await derived.region(job_id=parent, index=0, cells=[4], prompt="a door", origin=ORIGIN)
    assert await _jobs(service) == before
