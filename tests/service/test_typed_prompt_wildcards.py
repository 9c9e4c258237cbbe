"""A prompt typed in the remix or Vary (Region) modal is a dynamic prompt like /imagine's: the new
job's seed picks its `{a|b}` variants and `__wildcards__`, the template stays for rerolls, and an
unknown wildcard is refused before anything is queued."""

from __future__ import annotations

import pytest

from bot.errors import InvalidOption
from bot.params import wildcards
from bot.services.derived import DerivedJobs
from db.models import JobStatus
from db.repositories import jobs as jobs_repo
from tests.accounts.helpers import TOML
from tests.service.test_derived_jobs import ORIGIN, _finished, _jobs, service_with  # noqa: F401

TEMPLATE = "a __colors__ {cat|dog}"


async def _service(service_with, tmp_path):  # type: ignore[no-untyped-def]  # noqa: F811
    service = await service_with(TOML)
    folder = tmp_path / "wildcards"
    folder.mkdir()
    (folder / "colors.txt").write_text("teal\nred\nviolet\n")
    service.prompt_folders = (folder, None)
    return service, folder


async def test_typed_prompts_resolve_with_the_new_seed_and_keep_the_template(service_with, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    service, folder = await _service(service_with, tmp_path)
    parent = await _finished(service)
    derived = DerivedJobs(service)
    children = [
        (await derived.remix_reroll(job_id=parent, prompt=TEMPLATE, origin=ORIGIN)).job,
        (await derived.variation(job_id=parent, index=0, strength=0.7, origin=ORIGIN, prompt=TEMPLATE)).job,
        (await derived.canvas(job_id=parent, index=0, op="zoom2", origin=ORIGIN, prompt=TEMPLATE)).job,
        (await derived.region(job_id=parent, index=0, cells=[4], prompt=TEMPLATE, origin=ORIGIN)).job,
    ]
    for child in children:
        params = child.params
        assert params["prompt_template"] == TEMPLATE
        assert "__" not in params["prompt"] and "{" not in params["prompt"]
        assert params["prompt"] == wildcards.resolve(TEMPLATE, int(params["seed"]), folder)
        assert child.prompt == params["prompt"]  # the job's row (what moderation screened) holds the resolved text
    async with service.sessions.begin() as session:  # a Reroll of the remixed job picks again from the template
        row = await jobs_repo.get_job(session, job_id=children[0].id)
        row.status = JobStatus.completed
    again = (await service.reroll(job_id=children[0].id, origin=ORIGIN)).job  # type: ignore[arg-type]
    assert again.params["prompt_template"] == TEMPLATE
    assert again.params["prompt"] == wildcards.resolve(TEMPLATE, int(again.params["seed"]), folder)


async def test_a_typed_prompt_without_dynamic_syntax_keeps_no_template(service_with, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    service, _ = await _service(service_with, tmp_path)
    parent = await _finished(service)
    child = (await DerivedJobs(service).region(job_id=parent, index=0, cells=[4], prompt="a door",
                                               origin=ORIGIN)).job
    assert child.params["prompt"] == "a door" and "prompt_template" not in child.params


async def test_an_unknown_wildcard_in_a_typed_prompt_is_refused_before_queueing(service_with, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    service, _ = await _service(service_with, tmp_path)
    parent = await _finished(service)
    derived = DerivedJobs(service)
    before = await _jobs(service)
    sentence = "There is no wildcard `__nope__`; ask the bot's owner which ones exist."
    for start in (lambda: derived.remix_reroll(job_id=parent, prompt="a __nope__", origin=ORIGIN),
                  lambda: derived.variation(job_id=parent, index=0, strength=0.7, origin=ORIGIN, prompt="a __nope__"),
                  lambda: derived.canvas(job_id=parent, index=0, op="left", origin=ORIGIN, prompt="a __nope__"),
                  lambda: derived.region(job_id=parent, index=0, cells=[4], prompt="a __nope__", origin=ORIGIN)):
        with pytest.raises(InvalidOption) as caught:
            await start()
        assert caught.value.message == sentence
    assert await _jobs(service) == before
