"""Attachments come from Discord's CDN only, and redirects never leave it (issue 14, item 13)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.errors import InvalidOption
from bot.params import attachments


@dataclass
class _Att:
    filename: str
    size: int
    url: str


async def _server(routes: dict[str, web.Response | str]) -> TestServer:
    """A local server; a str value is a redirect to that location."""
    hits: list[str] = []

    def handler(value: web.Response | str):  # type: ignore[no-untyped-def]
        async def handle(request: web.Request) -> web.StreamResponse:
            hits.append(request.path)
            if isinstance(value, str):
                raise web.HTTPFound(value)
            return value
        return handle

    app = web.Application()
    for path, value in routes.items():
        app.router.add_get(path, handler(value))
    server = TestServer(app)
    await server.start_server()
    server.hits = hits  # type: ignore[attr-defined]
    return server


@pytest.mark.parametrize("url", [
    "http://cdn.discordapp.com/attachments/1/2/a.png",  # not HTTPS
    "https://cdn.discordapp.com.evil.example/a.png",
    "https://user@cdn.discordapp.com/a.png",
    "https://169.254.169.254/latest/meta-data",
    "file:///etc/passwd",
])
async def test_urls_off_discords_cdn_are_refused_before_any_request(url: str) -> None:
    class Exploding:
        def get(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("must not fetch")

    with pytest.raises(InvalidOption, match="is not a Discord attachment"):
        await attachments.download(_Att("a.png", 10, url), session=Exploding())  # type: ignore[arg-type]


async def test_a_redirect_off_the_cdn_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    inside = await _server({"/internal": web.Response(body=b"secret")})
    cdn = await _server({"/a.png": str(inside.make_url("/internal")), "/b.png": "/c.png",
                         "/c.png": web.Response(body=b"png bytes")})
    monkeypatch.setattr(attachments, "CDN_ORIGINS", frozenset({str(cdn.make_url("/")).rstrip("/")}))
    try:
        with pytest.raises(InvalidOption, match="could not be downloaded from Discord"):
            await attachments.download(_Att("a.png", 10, str(cdn.make_url("/a.png"))))
        assert inside.hits == []  # type: ignore[attr-defined]
        # a redirect that stays on the CDN is followed
        assert await attachments.download(_Att("b.png", 10, str(cdn.make_url("/b.png")))) == b"png bytes"
    finally:
        await inside.close()
        await cdn.close()
