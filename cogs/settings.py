"""/settings: a member's defaults for the image commands, set by options or on a panel.

With options, `/settings` stores them (checked like /imagine's options); with none, it shows the
panel (ephemeral): select menus for model, aspect and style, buttons for private results, remix,
the negative prompt (a modal) and reset. The panel's controls are DynamicItems whose custom_id
carries the member's id (`atelier:settings:ACTION:USER`), so they keep working after a restart and
only that member may use them. Defaults are per member, the same in every server (see
bot/services/preferences.py); a server's own sit under them (`/admin defaults`).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import NotYours
from bot.params import styles
from bot.services.preferences import MEMBER_FIELDS, Defaults
from bot.ui.feature import Feature, model_choices
from bot.ui.render import ACCENT, shorten
from bot.ui.tree import report_error
from inference.models import ASPECTS, TEXT_TO_IMAGE_KINDS

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

PREFIX = "atelier:settings"
MODAL_PREFIX = "atelier:settings-negative:"
NEGATIVE_INPUT = "negative"
# A select's choice meaning "no default of mine: the server's (or the model's)".
UNSET = "-"
# Discord's select menus hold 25 options; one is UNSET.
MENU_SIZE = 24
ON_OFF = [app_commands.Choice(name="on", value="on"), app_commands.Choice(name="off", value="off")]
# What applies where neither the member nor the server set a default.
UNSET_TEXT = {"model": "the server's default model", "aspect": "the model's", "style": "none", "negative": "none",
              "steps": "the model's", "private": "off", "remix": "off"}
LABELS = {"model": "Model", "aspect": "Aspect", "style": "Style", "negative": "Negative prompt", "steps": "Steps",
          "private": "Private results", "remix": "Remix"}


def settings_id(action: str, user_id: int) -> str:
    return f"{PREFIX}:{action}:{user_id}"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return shorten(str(value), 200) if isinstance(value, str) else str(value)


def panel_embed(mine: Defaults, server: Defaults) -> discord.Embed:
    """Each default with where it comes from: yours, the server's, or the model's own."""
    embed = discord.Embed(title="Your defaults", colour=ACCENT, description=(
        "Used when you leave an option out of /imagine (and, where they fit, /anime and /pose). "
        "They apply in every server; an option you type always wins."))
    for name in MEMBER_FIELDS:
        value, theirs = getattr(mine, name), getattr(server, name)
        if value is not None:
            text = f"**{_shown(value)}**"
        elif theirs is not None:
            text = f"{_shown(theirs)} (server default)"
        else:
            text = UNSET_TEXT[name]
        embed.add_field(name=LABELS[name], value=text[:1024], inline=name not in ("negative",))
    return embed


def _select(action: str, user_id: int, placeholder: str, choices: list[tuple[str, str]],
            current: str | None) -> SettingsControl:
    options = [discord.SelectOption(label="No default of mine", value=UNSET, default=current is None)]
    options += [discord.SelectOption(label=label[:100], value=value, default=value == current)
                for label, value in choices[:MENU_SIZE]]
    select: discord.ui.Select[discord.ui.View] = discord.ui.Select(
        custom_id=settings_id(action, user_id), placeholder=placeholder, options=options)
    return SettingsControl(action, user_id, select)


def _button(action: str, user_id: int, label: str, style: discord.ButtonStyle) -> SettingsControl:
    return SettingsControl(action, user_id, discord.ui.Button(custom_id=settings_id(action, user_id), label=label,
                                                              style=style))


def panel_view(bot: Atelier, user_id: int, mine: Defaults, server: Defaults, style_names: list[str]
               ) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    models = [(spec.name, spec.name) for spec in bot.registry.specs() if spec.kind in TEXT_TO_IMAGE_KINDS]
    if mine.model and (mine.model, mine.model) in models[MENU_SIZE:]:  # the member's own always shows, chosen
        models = [(mine.model, mine.model), *models[:MENU_SIZE - 1]]
    view.add_item(_select("model", user_id, "Model", models, mine.model))
    view.add_item(_select("aspect", user_id, "Aspect", [(a, a) for a in ASPECTS], mine.aspect))
    if style_names:
        view.add_item(_select("style", user_id, "Style", [(s, s) for s in style_names], mine.style))
    effective = mine.over(server)
    on, off = discord.ButtonStyle.success, discord.ButtonStyle.secondary
    view.add_item(_button("private", user_id, f"Private results: {_shown(bool(effective.private))}",
                          on if effective.private else off))
    view.add_item(_button("remix", user_id, f"Remix: {_shown(bool(mine.remix))}", on if mine.remix else off))
    view.add_item(_button("negative", user_id, "Negative prompt…", discord.ButtonStyle.secondary))
    view.add_item(_button("reset", user_id, "Reset", discord.ButtonStyle.danger))
    view.stop()  # routed by the DynamicItem template, never by a stored view (see bot/ui/components.layout)
    return view


async def panel(bot: Atelier, user_id: int, guild_id: int | None) -> dict[str, Any]:
    mine, server = await bot.preferences.layers(user_id, guild_id)
    # The server's own styles, then the packaged ones, as many as a menu holds (the option takes any),
    # and the member's own choice always among them.
    names = styles.search("", await bot.styles.for_guild(guild_id), limit=MENU_SIZE)
    if mine.style and mine.style not in names:
        names = [mine.style, *names[:MENU_SIZE - 1]]
    return {"embed": panel_embed(mine, server), "view": panel_view(bot, user_id, mine, server, names)}


class SettingsControl(discord.ui.DynamicItem[discord.ui.Item["discord.ui.View"]],
                      template=PREFIX + r":(?P<action>model|aspect|style|private|remix|negative|reset)"
                                        r":(?P<user_id>[0-9]+)"):
    def __init__(self, action: str, user_id: int, item: discord.ui.Item[Any] | None = None) -> None:
        super().__init__(item or discord.ui.Button(custom_id=settings_id(action, user_id)))
        self.action, self.user_id = action, user_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> SettingsControl:
        return cls(match["action"], int(match["user_id"]), item)

    async def callback(self, interaction: discord.Interaction[Atelier]) -> None:  # type: ignore[override]
        try:
            if interaction.user.id != self.user_id:
                raise NotYours("These are someone else's settings; run /settings for yours.")
            await self._act(interaction)
        except Exception as exc:  # DynamicItem errors bypass the tree: report them the same way
            await report_error(interaction, exc)

    async def _act(self, interaction: discord.Interaction[Atelier]) -> None:
        bot, user, guild = interaction.client, self.user_id, interaction.guild_id
        preferences = bot.preferences
        if self.action in ("model", "aspect", "style"):
            values = getattr(self.item, "values", None) or [UNSET]
            await preferences.set_member(user, guild, {self.action: None if values[0] == UNSET else values[0]})
        elif self.action == "private":
            effective = await preferences.effective(user, guild)
            await preferences.set_member(user, guild, {"private": not effective.private})
        elif self.action == "remix":
            await preferences.set_member(user, guild, {"remix": not await preferences.remix(user, guild)})
        elif self.action == "negative":
            mine = await preferences.member(user)
            await interaction.response.send_modal(NegativeModal(user, mine.negative))
            return
        elif self.action == "reset":
            await preferences.reset_member(user)
        await interaction.response.edit_message(**await panel(bot, user, guild))


class NegativeModal(discord.ui.Modal, title="Default negative prompt"):
    """Its submission is handled by the cog's listener (by custom_id), so it still works when the
    bot restarted while the member was typing."""

    def __init__(self, user_id: int, current: str | None) -> None:
        super().__init__(custom_id=f"{MODAL_PREFIX}{user_id}", timeout=600)
        self.add_item(discord.ui.TextInput(label="Keep out of your images (empty: none)", custom_id=NEGATIVE_INPUT,
                                           style=discord.TextStyle.paragraph, required=False, max_length=1000,
                                           default=current or None))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        return None  # answered by Settings.on_interaction


def _text_input(components: list[dict[str, Any]], custom_id: str) -> str | None:
    for component in components:
        if component.get("custom_id") == custom_id and "value" in component:
            return str(component["value"])
        inner = component.get("components") or ([component["component"]] if "component" in component else [])
        found = _text_input(inner, custom_id)
        if found is not None:
            return found
    return None


class Settings(Feature):
    @app_commands.command(name="settings", description="Your defaults for /imagine and friends (no options: a panel)")
    @app_commands.describe(
        model="Your default model", aspect="Your default shape", style="Your default style",
        negative="Your default negative prompt (what to keep out)", steps="Your default steps (within the model's range)",
        private="Results only you can see", remix="Reroll, Vary, Zoom and Pan first let you edit the prompt",
        reset="Clear one default, or all of them (done before the other options)",
    )
    @app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS], private=ON_OFF, remix=ON_OFF,
                          reset=[app_commands.Choice(name="all", value="all")] +
                          [app_commands.Choice(name=name, value=name) for name in MEMBER_FIELDS])
    async def settings(self, interaction: discord.Interaction[Atelier], model: str | None = None,
                       aspect: str | None = None, style: str | None = None, negative: str | None = None,
                       steps: int | None = None, private: str | None = None, remix: str | None = None,
                       reset: str | None = None) -> None:
        preferences = self.bot.preferences
        user, guild = interaction.user.id, interaction.guild_id
        changes: dict[str, Any] = {name: value for name, value in (
            ("model", model), ("aspect", aspect), ("style", style), ("negative", negative), ("steps", steps),
        ) if value is not None}
        for name, value in (("private", private), ("remix", remix)):
            if value is not None:
                changes[name] = value == "on"
        said = []
        if changes or reset is not None:
            stored = (await preferences.set_member(user, guild, changes, reset=reset)).as_dict()
        if reset is not None:
            said.append("Reset " + ("all your defaults" if reset == "all" else f"your {LABELS[reset].lower()}") + ".")
        if changes:
            said.append("Saved: " + ", ".join(f"{LABELS[name].lower()} " + (
                "cleared" if stored[name] is None else _shown(stored[name])) for name in changes) + ".")
        await interaction.response.send_message(" ".join(said) or None, ephemeral=True,
                                                **await panel(self.bot, user, guild))

    @settings.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_choices((s for s in self.bot.registry.specs() if s.kind in TEXT_TO_IMAGE_KINDS), current,
                             label=lambda spec: f"{spec.name} ({spec.kind})", match_kind=True)

    @settings.autocomplete("style")
    async def style_autocomplete(self, interaction: discord.Interaction[Atelier], current: str
                                 ) -> list[app_commands.Choice[str]]:
        server = await self.bot.styles.for_guild(interaction.guild_id)
        return [app_commands.Choice(name=name, value=name) for name in styles.search(current, server)]

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Atelier]) -> None:
        """The negative prompt's modal, answered by custom_id (restart-safe, member checked)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        custom_id = str((interaction.data or {}).get("custom_id", ""))
        if not custom_id.startswith(MODAL_PREFIX):
            return
        try:
            owner = int(custom_id.removeprefix(MODAL_PREFIX))
            if interaction.user.id != owner:
                raise NotYours("These are someone else's settings; run /settings for yours.")
            text = _text_input(list((interaction.data or {}).get("components", [])), NEGATIVE_INPUT)
            await self.bot.preferences.set_member(owner, interaction.guild_id, {"negative": text or None})
            shown = await panel(self.bot, owner, interaction.guild_id)
            if interaction.message is not None:
                await interaction.response.edit_message(**shown)
            else:
                await interaction.response.send_message(ephemeral=True, **shown)
        except Exception as exc:
            await report_error(interaction, exc)


async def setup(bot: Atelier) -> None:
    bot.add_dynamic_items(SettingsControl)
    await bot.add_cog(Settings(bot))
