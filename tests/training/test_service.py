"""/train's bot side: who may train where, the training job in the queue (inputs stored apart, only
training devices claim it, priced like many generations), and the member LoRA space."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import InvalidOption, NotHere, NotYours
from bot.services.inputs import fill_inputs
from bot.services.jobs import JobService, Origin
from bot.services.pool_events import request_from_params
from bot.services.quotas import job_credits
from bot.services.training import TRAIN_COMMAND, TrainingRules, TrainingService
from db import migrate
from db import queue as job_queue
from db.engine import create_engine, create_sessionmaker
from db.repositories import jobs as jobs_repo
from inference.models import ModelRegistry
from inference.training.job import unpack_images
from inference.training.settings import settings_for
from tests.service.test_job_service import TOML
from tests.training.test_trainer import training_images

GUILD, OTHER_GUILD, ROLE = 10, 20, 99


@pytest.fixture
async def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "models.toml").write_text(TOML)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await migrate.upgrade(engine)
    sessions = create_sessionmaker(engine)
    yield JobService(sessions, ModelRegistry.load(tmp_path / "models.toml")), TrainingService(
        sessions, train_dir=tmp_path / "training")
    await engine.dispose()


async def test_training_is_off_until_a_server_turns_it_on_and_then_follows_its_role(env) -> None:  # type: ignore[no-untyped-def]
    _, training = env
    with pytest.raises(NotHere, match="off on this server"):
        await training.check_may_train(guild_id=GUILD, role_ids=[], real_person=False, consent=False)
    with pytest.raises(NotHere, match="direct messages"):
        await training.check_may_train(guild_id=None, role_ids=[], real_person=False, consent=False)
    await training.set_rules(guild_id=GUILD, rules=TrainingRules(enabled=True, role_id=ROLE), by=1)
    with pytest.raises(NotHere, match="role"):
        await training.check_may_train(guild_id=GUILD, role_ids=[5], real_person=False, consent=False)
    await training.check_may_train(guild_id=GUILD, role_ids=[ROLE], real_person=False, consent=False)
    with pytest.raises(NotHere, match="off on this server"):  # one server's rule is not another's
        await training.check_may_train(guild_id=OTHER_GUILD, role_ids=[ROLE], real_person=False, consent=False)


async def test_real_people_need_the_servers_opt_in_and_the_members_consent(env) -> None:  # type: ignore[no-untyped-def]
    _, training = env
    await training.set_rules(guild_id=GUILD, rules=TrainingRules(enabled=True), by=1)
    with pytest.raises(NotHere, match="real people"):
        await training.check_may_train(guild_id=GUILD, role_ids=[], real_person=True, consent=True)
    await training.set_rules(guild_id=GUILD, rules=TrainingRules(enabled=True, real_people=True), by=1)
    with pytest.raises(InvalidOption, match="consent"):
        await training.check_may_train(guild_id=GUILD, role_ids=[], real_person=True, consent=False)
    await training.check_may_train(guild_id=GUILD, role_ids=[], real_person=True, consent=True)


def _train_params(training: TrainingService, user_id: int = 1, name: str = "rosie") -> dict:
    settings = settings_for("subject", "sd1", trigger="zxq_rosie", base_model="fast")
    return training.job_params(settings, model_kind="sd15", user_id=user_id, name=name, images=training_images())


async def test_a_training_job_waits_for_a_training_device_without_holding_up_the_members_other_jobs(env) -> None:  # type: ignore[no-untyped-def]
    jobs, training = env
    trained = await jobs.submit(command=TRAIN_COMMAND, params=_train_params(training), origin=Origin(user_id=1))
    async with jobs.sessions() as session:
        stored = await jobs_repo.get_inputs(session, job_id=trained.job.id)
        job = await jobs_repo.get_job(session, job_id=trained.job.id)
    assert set(stored) == {"train_images"}  # the images live apart from the params the scheduler reads
    assert job is not None and "train_images" not in job.params
    later = await jobs.submit(command="imagine", params={"model": "fast", "prompt": "a cat", "steps": 4, "width": 64,
                                                           "height": 64, "seed": 1}, origin=Origin(user_id=1))
    async with jobs.sessions.begin() as session:
        first = await job_queue.claim_next_job(session, worker="main/cpu#0", excluded=(TRAIN_COMMAND,))
    assert first is not None and first.id == later.job.id
    async with jobs.sessions.begin() as session:
        claimed = await job_queue.claim_next_job(session, worker="main/cuda:0#0")
    assert claimed is not None and claimed.id == trained.job.id
    request = request_from_params(claimed.id, claimed.params)
    fill_inputs(request, stored)
    assert request.task == "train" and unpack_images(request.train_images or "") == training_images()


def test_a_default_training_job_costs_as_much_as_many_generations(env) -> None:  # type: ignore[no-untyped-def]
    _, training = env
    one_image = job_credits({"width": 512, "height": 512, "steps": 25, "count": 1})
    assert job_credits(_train_params(training)) >= 30 * one_image
    with pytest.raises(InvalidOption, match="cannot be trained on"):
        training.job_params(settings_for("subject", "sd1", trigger="zxq", base_model="x"), model_kind="sdxl-turbo",
                            user_id=1, name="n", images=training_images())


async def _finished_training(jobs: JobService, training: TrainingService, *, user_id: int, guild_id: int,
                             name: str = "rosie"):  # type: ignore[no-untyped-def]
    ticket = await jobs.submit(command=TRAIN_COMMAND, params=_train_params(training, user_id, name),
                               origin=Origin(user_id=user_id, guild_id=guild_id))
    job = ticket.job
    output = training.space / job.params["extra"]["training"]["output"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(b"lora")  # what the engine writes (tests/training/test_job.py)
    return await training.record(job), output


async def test_the_lora_space_is_private_until_shared_on_its_server(env) -> None:  # type: ignore[no-untyped-def]
    jobs, training = env
    entry, _ = await _finished_training(jobs, training, user_id=1, guild_id=GUILD)
    assert entry is not None and entry.name == "rosie" and entry.trigger == "zxq_rosie" and not entry.shared
    assert [e.name for e in await training.usable(user_id=1, guild_id=GUILD)] == ["rosie"]
    assert await training.usable(user_id=2, guild_id=GUILD) == []
    with pytest.raises(NotYours):
        await training.resolve(user_id=2, guild_id=GUILD, lora_id=entry.id)
    with pytest.raises(NotYours, match="owner or a moderator"):
        await training.share(actor_id=2, guild_id=GUILD, lora_id=entry.id, shared=True)
    with pytest.raises(NotHere):
        await training.share(actor_id=1, guild_id=OTHER_GUILD, lora_id=entry.id, shared=True)
    await training.share(actor_id=1, guild_id=GUILD, lora_id=entry.id, shared=True)
    assert [e.name for e in await training.search(user_id=2, guild_id=GUILD, text="ros")] == ["rosie"]
    assert (await training.resolve(user_id=2, guild_id=GUILD, lora_id=entry.id)).library_name.startswith("1/")
    assert await training.usable(user_id=2, guild_id=OTHER_GUILD) == []  # shared here, not elsewhere
    await training.share(actor_id=3, guild_id=GUILD, lora_id=entry.id, shared=False, moderator=True)
    assert await training.usable(user_id=2, guild_id=GUILD) == []


async def test_rename_delete_and_forget(env) -> None:  # type: ignore[no-untyped-def]
    jobs, training = env
    _, path = await _finished_training(jobs, training, user_id=1, guild_id=GUILD)
    await training.rename(user_id=1, name="rosie", new_name="rosie v2")
    assert [e.name for e in await training.owned(user_id=1)] == ["rosie v2"]
    with pytest.raises(InvalidOption, match="no LoRA named"):
        await training.rename(user_id=2, name="rosie v2", new_name="mine now")
    with pytest.raises(InvalidOption, match="already have"):
        await training.check_name_free(user_id=1, name="rosie v2")
    with pytest.raises(InvalidOption, match="1-32 letters"):
        await training.rename(user_id=1, name="rosie v2", new_name="../../etc")
    await training.delete(user_id=1, name="rosie v2")
    assert not path.exists() and await training.owned(user_id=1) == []
    _, first = await _finished_training(jobs, training, user_id=1, guild_id=GUILD, name="a")
    _, second = await _finished_training(jobs, training, user_id=1, guild_id=GUILD, name="b")
    _, others = await _finished_training(jobs, training, user_id=2, guild_id=GUILD, name="a")
    assert await training.forget(user_id=1) == 2
    assert not first.exists() and not second.exists() and others.exists()
    assert [e.name for e in await training.owned(user_id=2)] == ["a"]


async def test_only_the_training_devices_workers_claim_a_training_job(env) -> None:  # type: ignore[no-untyped-def]
    jobs, training = env
    jobs.train_devices = frozenset({"cuda:0", "remote"})
    ticket = await jobs.submit(command=TRAIN_COMMAND, params=_train_params(training), origin=Origin(user_id=1))
    assert await jobs.claim("main/cpu#0") is None
    assert await jobs.claim("main/cuda:1#0") is None
    request = await jobs.claim("main/cuda:0#0")
    assert request is not None and request.job_id == ticket.job.id and request.task == "train"
    assert unpack_images(request.train_images or "") == training_images()


def test_worker_names_give_their_device() -> None:
    from bot.services.pool_events import worker_device

    assert worker_device("main/cuda:0#1") == "cuda:0"
    assert worker_device("shards-0-1/cpu#0") == "cpu"
    assert worker_device("main/remote") == "remote"


def test_training_devices_setting() -> None:
    from pydantic import ValidationError

    from bot.settings import Settings

    assert Settings().train_device_list == []  # off unless named
    settings = Settings(train_devices="cuda:1, remote")
    assert settings.train_device_list == ["cuda:1", "remote"] and settings.train_dir.parts[-1] == "training"
    with pytest.raises(ValidationError):
        Settings(train_devices="gpu7")


async def test_forget_removes_the_members_loras_through_the_accounts_hook(env) -> None:  # type: ignore[no-untyped-def]
    from bot.services.accounts import AccountService

    jobs, training = env
    _, path = await _finished_training(jobs, training, user_id=1, guild_id=GUILD)
    accounts = AccountService(jobs)
    accounts.on_forget.append(training.forget)
    await accounts.forget(user_id=1)
    assert not path.exists() and await training.owned(user_id=1) == []


class _Scores:
    """opennsfw's classify() by a rule: images whose top-left pixel is pure red score 0.99."""

    def classify(self, image):  # type: ignore[no-untyped-def]
        from types import SimpleNamespace

        return SimpleNamespace(nsfw=0.99 if image.getpixel((0, 0)) == (255, 0, 0) else 0.01)


class _Moderation:
    """What screen_images reads of the moderation service: its image checker and a server's policy."""

    def __init__(self, threshold: float) -> None:
        from moderation.images import ImageChecker
        from moderation.policy import Policy

        self.images = ImageChecker()
        self.images._classifier = _Scores()  # the real check() and policy, a scripted classifier
        self.images.available = True
        self._policy = Policy(image_threshold=threshold)

    async def policy(self, guild_id):  # type: ignore[no-untyped-def]
        return self._policy


async def test_a_training_image_the_nsfw_classifier_flags_is_refused(env) -> None:  # type: ignore[no-untyped-def]
    import io

    from PIL import Image

    from bot.errors import Refused

    _, training = env
    clean = training_images()
    flagged = io.BytesIO()
    Image.new("RGB", (300, 300), (255, 0, 0)).save(flagged, format="PNG")
    await training.screen_images(clean, guild_id=GUILD, moderation=_Moderation(0.7))
    with pytest.raises(Refused, match="Training image 6 was flagged by the NSFW image filter"):
        await training.screen_images([*clean, flagged.getvalue()], guild_id=GUILD, moderation=_Moderation(0.7))
    # the server's policy decides: a threshold above the score lets it through
    await training.screen_images([*clean, flagged.getvalue()], guild_id=GUILD, moderation=_Moderation(1.0))


async def test_imagine_takes_a_member_lora_by_choice_or_typed_name_and_checks_its_family(env) -> None:  # type: ignore[no-untyped-def]
    jobs, training = env
    entry, _ = await _finished_training(jobs, training, user_id=1, guild_id=GUILD)
    assert (await training.chosen(user_id=1, guild_id=GUILD, value=f"member:{entry.id}")).id == entry.id
    assert (await training.chosen(user_id=1, guild_id=GUILD, value="  ROSIE ")).id == entry.id
    assert await training.chosen(user_id=2, guild_id=GUILD, value="rosie") is None  # not theirs: the folder's name
    assert await training.chosen(user_id=1, guild_id=GUILD, value="styles/watercolor") is None
    with pytest.raises(NotYours):
        await training.chosen(user_id=2, guild_id=GUILD, value=f"member:{entry.id}")
    params = training.apply({"model": "fast", "loras": []}, entry, weight=None, model_kind="sd15", model="fast")
    assert params["loras"] == [[f"member:{entry.library_name}", 1.0]]
    with pytest.raises(InvalidOption, match=r"trained on SD 1\.5"):
        training.apply({"model": "x"}, entry, weight=1.0, model_kind="sdxl-lightning", model="x")
    with pytest.raises(InvalidOption, match="weight must be 0-2"):
        training.apply({"model": "fast"}, entry, weight=3.0, model_kind="sd15", model="fast")


async def test_export_lists_the_members_loras_through_the_accounts_hook(env) -> None:  # type: ignore[no-untyped-def]
    import json

    from bot.services.accounts import AccountService

    jobs, training = env
    await _finished_training(jobs, training, user_id=1, guild_id=GUILD, name="rosie")
    await _finished_training(jobs, training, user_id=2, guild_id=GUILD, name="someone else's")
    accounts = AccountService(jobs)
    accounts.on_export.append(training.export)
    document = json.loads(await accounts.export(user_id=1))
    (lora,) = document["loras"]
    assert (lora["name"], lora["trigger"], lora["shared"], lora["guild_id"]) == ("rosie", "zxq_rosie", False, str(GUILD))
