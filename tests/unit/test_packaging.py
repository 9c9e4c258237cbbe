"""compose.yaml and the Dockerfile, read as an admin's tools would: services, profiles, settings, GPUs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.settings import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
ATELIER = ("bot-gpu", "bot", "worker")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def _interpolated(value: str) -> str:
    """``value`` as compose would pass it once ``.env`` fills its ${VARIABLES}."""
    return re.sub(r"\$\{[^}]*\}", "from-dotenv", value)


def _gpus(service: dict[str, Any]) -> list[dict[str, Any]]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def test_compose_has_a_one_box_and_a_split_profile() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "bot-gpu", "bot", "worker"}
    profiles = {name: tuple(s.get("profiles", ())) for name, s in services.items()}
    assert profiles == {"postgres": (), "bot-gpu": ("onebox",), "redis": ("split",), "bot": ("split",),
                        "worker": ("split",)}
    # GPUs where inference runs: the one-box bot and the workers, not the split bot.
    assert [name for name, s in services.items() if _gpus(s)] == ["bot-gpu", "worker"]
    assert all(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in _gpus(services["worker"]))
    for name in ATELIER:
        assert services[name]["build"] == "." and services[name]["command"][0] == "atelier"
    assert services["worker"]["command"] == ["atelier", "worker"]  # the Redis URL stays out of argv


def test_compose_points_each_service_at_the_others() -> None:
    services = _compose()["services"]
    postgres = services["postgres"]["environment"]
    for name in ("bot-gpu", "bot"):
        env = services[name]["environment"]
        assert set(env) <= {*ENV_NAMES.values(), "HF_HOME", "HF_TOKEN"}, f"{name} sets an unknown setting"
        url = urlsplit(_interpolated(env["ATELIER_DATABASE_URL"]))
        assert url.scheme == "postgresql+asyncpg" and url.hostname == "postgres" and url.port == 5432
        assert url.username == postgres["POSTGRES_USER"] and url.path == f"/{postgres['POSTGRES_DB']}"
        assert env["HF_HOME"] == "/data/huggingface"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "ATELIER_REDIS_URL" not in services["bot-gpu"]["environment"]  # one box: inference in-process
    for name in ("bot", "worker"):
        redis = urlsplit(services[name]["environment"]["ATELIER_REDIS_URL"])
        assert redis.hostname == "redis" and redis.port == 6379
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]
    assert not any("ports" in s for s in services.values())  # the database and Redis stay private
    # Secrets come from .env: the password is required, never written here.
    assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert set(_compose()["volumes"]) >= {"pgdata", "models"}


def test_the_image_installs_the_video_extra_and_a_torch_build_for_its_cuda_base() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    cuda = re.search(r"^ARG CUDA_VERSION=(\d+)\.(\d+)", dockerfile, re.M)
    index = re.search(r"^ARG TORCH_INDEX=https://download\.pytorch\.org/whl/cu(\d+)$", dockerfile, re.M)
    assert cuda and index and index.group(1) == cuda.group(1) + cuda.group(2)
    assert re.search(r"^FROM nvidia/cuda:\$\{CUDA_VERSION\}-", dockerfile, re.M)
    assert re.search(r'pip install "\$\{TORCH_SPEC\}" --index-url "\$\{TORCH_INDEX\}"', dockerfile)
    install = re.search(r'^RUN pip install "\.\[(.+)\]"$', dockerfile, re.M)
    assert install and "video" in install.group(1).split(",") and "postgres" in install.group(1).split(",")
