"""/help end to end: short pages, Previous/Next buttons that still work after a restart."""

from __future__ import annotations

from cogs.help import PAGES


async def test_help_pages_forward_and_back_across_a_restart(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot():
        inter = await fake.slash("help", user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert inter.ephemeral
        first = inter.original
        assert first.embeds[0]["title"] == PAGES[0][0]
        assert first.embeds[0]["footer"]["text"].startswith(f"Page 1 of {len(PAGES)}")
        click = await fake.click(first.id, "atelier:help:1", user_id=fake.user_id)
        await click.wait_acked(3)
        await fake.wait_for(lambda f: f.messages[first.id].embeds[0]["title"] == PAGES[1][0], timeout=10)
    async with start_bot():  # a restart: the buttons are matched by custom_id, not by a view in memory
        click = await fake.click(first.id, "atelier:help:2", user_id=fake.user_id)
        await click.wait_acked(3)
        await fake.wait_for(lambda f: f.messages[first.id].embeds[0]["title"] == PAGES[2][0], timeout=10)
        assert set(fake.messages[first.id].custom_ids) == {"atelier:help:1", "atelier:help:3"}
    everything = " ".join(title + body for title, body in PAGES).lower()
    for topic in ("specific", "setting", "negative", "hands", "seed", "steps", "guidance", "lightning",
                  "tag", "copyright", "artist"):
        assert topic in everything, topic
    assert all(len(body) <= 1000 for _, body in PAGES)
