"""/show and /history for each kind of job: what reposting one may offer, how a history entry names it."""

from __future__ import annotations

from typing import Any

from cogs.account import show_view
from db.models import Job


def _job(command: str, **params: Any) -> Job:
    return Job(id=42, command=command, user_id=7, model="m", prompt="a fox", seed=1, params={"model": "m", **params})


def _ids(view) -> list[str]:  # type: ignore[no-untyped-def]
    return [item.custom_id for item in view.children]


def test_a_training_sample_is_reposted_without_reroll_or_rerun() -> None:
    # Either would submit the training job again, past /train's checks (server rules, name, consent).
    assert _ids(show_view(_job("train", task="train"))) == []


def test_a_describe_result_keeps_its_prompt_buttons() -> None:
    assert _ids(show_view(_job("describe"), 4)) == [f"atelier:prompt:42:{i}" for i in range(4)]


def test_images_get_reroll_and_rerun() -> None:
    for job in (_job("imagine", count=1), _job("edit", task="inpaint"), _job("blend", count=1)):
        assert _ids(show_view(job)) == ["atelier:reroll:42", "atelier:acct:rerun:42"]


def test_history_titles_name_the_command_that_made_each_job() -> None:
    from cogs.account import history_title

    assert history_title(_job("imagine")) == "#42 · m · seed 1"
    assert history_title(_job("train", task="train")) == "#42 · /train · m · seed 1"
    assert history_title(_job("edit", task="inpaint")) == "#42 · /edit · m · seed 1"
    assert history_title(_job("describe")) == "#42 · /describe · m"
