"""A Hugging Face hub on 127.0.0.1 for tests: serves local folders as model repositories in the hub's layout.

The routes a download uses: ``GET /api/models/{repo}[/revision/{rev}]`` (the file list with sizes) and
``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` (ETag, X-Repo-Commit, Content-Length; Range for resumes).
``gated`` repositories answer 401 with ``X-Error-Code: GatedRepo`` unless the request carries
``Authorization: Bearer <token>``; a file in ``drop`` has its connection cut half way and every later
request for it refused, as a network that went away does; ``requests`` records every request.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest


@dataclass
class FakeHub:
    repos: dict[str, Path] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)
    token: str = "hf_fake_accepted"
    drop: set[str] = field(default_factory=set)  # "repo/path" of files whose download the network cuts
    requests: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0  # seconds before each file's body: a download slow enough to watch
    url: str = ""
    _dropped: set[str] = field(default_factory=set)

    def add(self, repo: str, folder: Path) -> None:
        self.repos[repo] = folder

    def sha(self, repo: str) -> str:
        return hashlib.sha1(repo.encode()).hexdigest()

    def files(self, repo: str) -> dict[str, Path]:
        root = self.repos[repo]
        return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}

    def downloads(self) -> list[str]:
        """Paths of the files whose bodies were requested (GET on a resolve URL)."""
        return [path for method, path in self.requests if method == "GET" and "/resolve/" in path]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def _serve(self, *, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path))
            if path.startswith("/api/models/"):
                return self._info(path[len("/api/models/"):])
            repo, sep, rest = path.lstrip("/").partition("/resolve/")
            if not sep or repo not in hub.repos:
                return self._error(404, "RepoNotFound", "Repository not found")
            _, _, name = rest.partition("/")
            if repo in hub.gated and self.headers.get("Authorization") != f"Bearer {hub.token}":
                return self._error(401, "GatedRepo", f"Access to model {repo} is restricted.")
            file = hub.files(repo).get(name)
            if file is None:
                return self._error(404, "EntryNotFound", f"{name} does not exist")
            data = file.read_bytes()
            key = f"{repo}/{name}"
            if body and key in hub.drop and key in hub._dropped:
                self.close_connection = True
                self.connection.close()  # the network is gone: no answer at all
                return
            start = 0
            if body and (rng := self.headers.get("Range", "")).startswith("bytes="):
                start = int(rng[6:].split("-")[0] or 0)
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", hub.sha(repo))
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if not body:
                return
            time.sleep(hub.delay)
            if key in hub.drop:
                hub._dropped.add(key)
                self.wfile.write(data[start:start + max(1, (len(data) - start) // 2)])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(data[start:])

        def _info(self, rest: str) -> None:
            repo = rest.split("/revision/")[0]
            if repo not in hub.repos:
                return self._error(404, "RepoNotFound", "Repository not found")
            siblings = [{"rfilename": name, "size": file.stat().st_size} for name, file in hub.files(repo).items()]
            payload = json.dumps({"id": repo, "modelId": repo, "sha": hub.sha(repo), "private": False,
                                  "gated": "manual" if repo in hub.gated else False, "siblings": siblings}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(payload)

        def _error(self, status: int, code: str, message: str) -> None:
            payload = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(payload)

    return Handler


@contextlib.contextmanager
def serving(hub: FakeHub) -> Iterator[FakeHub]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()


def use_hub(monkeypatch: pytest.MonkeyPatch, hub: FakeHub, cache: Path) -> None:
    """Point this process's hub client at ``hub`` with ``cache`` as its cache, online, for one test.

    The client reads its settings when it is imported, so the test patches its constants (and the
    environment, for code that reads it later) and pytest undoes both afterwards."""
    from huggingface_hub import constants, file_download

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    # The client waits a second between retries of a dropped download; the fake network needs no wait.
    monkeypatch.setattr(file_download, "time", type("_NoWait", (), {"sleep": staticmethod(lambda seconds: None)}))


def hub_env(hub: FakeHub, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess that uses ``hub`` with ``home`` as HF_HOME."""
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ATELIER_", "HF_")) and k not in ("DISCORD_TOKEN", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1", **extra)
    return env


def repo_from(folder: Path, dest: Path, *, fp16: bool = True, extras: bool = True) -> Path:
    """A copy of a diffusers folder laid out as hub repositories are: with ``fp16`` a ``.fp16`` variant of
    every weight file, with ``extras`` the files a download must never fetch (``.bin`` duplicates, a
    root-level single-file checkpoint, a pickled ``.ckpt``)."""
    import shutil

    shutil.copytree(folder, dest)
    for weights in list(dest.rglob("*.safetensors")):
        if fp16:
            shutil.copy(weights, weights.with_name(weights.name.replace(".safetensors", ".fp16.safetensors")))
        if extras:
            weights.with_suffix(".bin").write_bytes(b"pickled weights a download must skip")
    if extras:
        (dest / "v1-5-pruned.safetensors").write_bytes(b"a single-file checkpoint a pipeline download skips")
        (dest / "v1-5-pruned.ckpt").write_bytes(b"pickle")
    return dest


def hub_registry(path: Path, repo: str, name: str = "hub-sd15") -> Path:
    """A models.toml serving one tiny SD 1.5 pipeline from the hub repository ``repo``."""
    path.write_text(f"""default = "{name}"
packaged = false

[models.{name}]
kind = "sd15"
source = "{repo}"
steps = 4
""", encoding="utf-8")
    return path
