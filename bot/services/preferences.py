"""Members' and servers' defaults: /settings, /admin defaults, and what a command takes from them.

A member's defaults are per user, the same in every server and in DMs (Midjourney's /settings
works that way): they are the member's taste, and every server runs the same models. A server's
defaults are per guild, set by its admins, and sit under every member's. For each option:

    the option given in the command > the member's default > the server's default > the model's own

A default that no longer fits (a model that was removed, steps beyond the chosen model's range)
is passed over rather than refused: the member did not type it in this command. Checks of what is
stored follow /imagine's (bot/services/imagine_checks.py), so a bad value is refused with the same
sentence.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import InvalidOption
from bot.params.imagine import ImagineOptions
from bot.services.imagine_checks import MAX_NEGATIVE, model_spec
from db.repositories import preferences as repo
from inference.models import (
    ASPECTS,
    TEXT_TO_IMAGE_KINDS,
    ModelRegistry,
    RequestRefused,
    validate_request_options,
)

log = logging.getLogger(__name__)

MAX_STYLE = 100
# What a server's admins may set (remix is a member's own way of working, not a server policy).
SERVER_FIELDS = ("model", "aspect", "style", "negative", "steps", "private")
MEMBER_FIELDS = (*SERVER_FIELDS, "remix")
# A style name -> its canonical name, or None when unknown (bot/params/styles.py once it exists).
StyleLookup = Callable[[str, int | None], str | None]


@dataclass(frozen=True, slots=True)
class Defaults:
    """One layer of defaults (None: not set here), or the layers merged."""

    model: str | None = None
    aspect: str | None = None
    style: str | None = None
    negative: str | None = None
    steps: int | None = None
    private: bool | None = None
    remix: bool | None = None

    def over(self, lower: Defaults) -> Defaults:
        """This layer where it sets a value, else ``lower``'s."""
        return Defaults(**{f.name: getattr(self, f.name) if getattr(self, f.name) is not None
                           else getattr(lower, f.name) for f in dataclasses.fields(self)})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def of(cls, values: dict[str, Any]) -> Defaults:
        return cls(**{k: v for k, v in values.items() if k in MEMBER_FIELDS})


class Preferences:
    """Reads, checks and stores defaults; applies them to a command's options."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], registry: ModelRegistry, *,
                 reads: async_sessionmaker[AsyncSession] | None = None, styles: StyleLookup | None = None) -> None:
        self.sessions = sessions
        self.reads = reads or sessions
        self.registry = registry
        # None: styles are not installed; a style name is kept as typed (trimmed) without a check.
        self.styles = styles

    # ----- reading -----

    async def member(self, user_id: int) -> Defaults:
        async with self.reads() as session:
            return Defaults.of(await repo.member(session, user_id=user_id))

    async def server(self, guild_id: int | None) -> Defaults:
        async with self.reads() as session:
            return Defaults.of(await repo.server(session, guild_id=guild_id))

    async def layers(self, user_id: int, guild_id: int | None) -> tuple[Defaults, Defaults]:
        """(the member's, the server's), read together."""
        async with self.reads() as session:
            mine = Defaults.of(await repo.member(session, user_id=user_id))
            theirs = Defaults.of(await repo.server(session, guild_id=guild_id))
        return mine, theirs

    async def effective(self, user_id: int, guild_id: int | None) -> Defaults:
        """The member's defaults over the server's: what a command without options gets."""
        mine, theirs = await self.layers(user_id, guild_id)
        return mine.over(theirs)

    async def remix(self, user_id: int, guild_id: int | None = None) -> bool:
        """Whether Reroll, Vary, Zoom and Pan should first open a modal with the prompt to edit."""
        return bool((await self.member(user_id)).remix)

    async def private(self, user_id: int, guild_id: int | None) -> bool:
        """Whether the member's results are shown to them alone."""
        return bool((await self.effective(user_id, guild_id)).private)

    # ----- changing -----

    async def set_member(self, user_id: int, guild_id: int | None, changes: dict[str, Any]) -> Defaults:
        """Check and store ``changes`` (a value sets it, None clears it); the member's defaults after.
        ``guild_id``: where they asked, whose defaults decide the model steps are checked against."""
        mine, theirs = await self.layers(user_id, guild_id)
        values = self.check(changes, mine, theirs, fields=MEMBER_FIELDS, guild_id=guild_id)
        async with self.sessions.begin() as session:
            stored = await repo.update_member(session, user_id=user_id, values=values)
        log.info("member %s changed defaults %s", user_id, sorted(values))
        return Defaults.of(stored)

    async def reset_member(self, user_id: int, field: str | None = None) -> Defaults:
        """Clear one default (``field``) or all of them."""
        names = MEMBER_FIELDS if field is None else (self._known(field, MEMBER_FIELDS),)
        async with self.sessions.begin() as session:
            return Defaults.of(await repo.update_member(session, user_id=user_id, values=dict.fromkeys(names)))

    async def set_server(self, guild_id: int, changes: dict[str, Any], *, by: int | None) -> Defaults:
        theirs = await self.server(guild_id)
        values = self.check(changes, theirs, Defaults(), fields=SERVER_FIELDS, guild_id=guild_id)
        async with self.sessions.begin() as session:
            stored = await repo.update_server(session, guild_id=guild_id, values=values, by=by)
        log.info("guild %s defaults %s changed by %s", guild_id, sorted(values), by)
        return Defaults.of(stored)

    async def reset_server(self, guild_id: int, field: str | None = None, *, by: int | None) -> Defaults:
        names = SERVER_FIELDS if field is None else (self._known(field, SERVER_FIELDS),)
        async with self.sessions.begin() as session:
            return Defaults.of(await repo.update_server(session, guild_id=guild_id, values=dict.fromkeys(names),
                                                        by=by))

    # ----- checking -----

    def check(self, changes: dict[str, Any], current: Defaults, below: Defaults, *, fields: tuple[str, ...],
              guild_id: int | None = None) -> dict[str, Any]:
        """``changes`` checked like /imagine's options and normalised (names as installed, text
        trimmed, empty text cleared). ``current``: the layer being changed; ``below``: the layer
        under it, whose model the steps are checked against when this layer names none."""
        values: dict[str, Any] = {}
        for name, value in changes.items():
            self._known(name, fields)
            values[name] = None if value is None else self._checked(name, value, guild_id)
        merged = dataclasses.replace(current, **values).over(below)
        if merged.steps is not None and ("steps" in values or "model" in values):
            spec = self._spec(merged.model) or model_spec(self.registry, None)
            try:
                validate_request_options(spec, steps=merged.steps)
            except RequestRefused as exc:
                mine = "" if "steps" in values else f" (your default steps are {merged.steps}; set `steps` too or reset it)"
                raise InvalidOption(f"{exc}{mine}.") from None
        return values

    def _checked(self, name: str, value: Any, guild_id: int | None) -> Any:
        if name == "model":
            return model_spec(self.registry, str(value)).name
        if name == "aspect":
            if value not in ASPECTS:
                raise InvalidOption(f"Unknown aspect {value!r}; choose one of {', '.join(ASPECTS)}.")
            return value
        if name == "negative":
            text = str(value).strip()
            if len(text) > MAX_NEGATIVE:
                raise InvalidOption(f"The negative prompt is {len(text)} characters; the limit is {MAX_NEGATIVE}.")
            return text or None
        if name == "style":
            text = str(value).strip()
            if len(text) > MAX_STYLE:
                raise InvalidOption(f"A style name is at most {MAX_STYLE} characters.")
            if text and self.styles is not None:
                found = self.styles(text, guild_id)
                if found is None:
                    raise InvalidOption(f"Unknown style {text!r}; pick one from the `style` option's list.")
                text = found
            return text or None
        if name == "steps":
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidOption(f"Steps must be a whole number; you gave {value!r}.")
            if value < 1:
                raise InvalidOption(f"Steps must be at least 1; you asked for {value}.")
            return value
        return bool(value)  # private, remix

    @staticmethod
    def _known(name: str, fields: tuple[str, ...]) -> str:
        if name not in fields:
            raise InvalidOption(f"There is no default called {name!r}; the defaults are {', '.join(fields)}.")
        return name

    def _spec(self, name: str | None) -> Any:
        """The installed text-to-image model called ``name``; None if it is not (any more)."""
        if not name:
            return None
        try:
            spec = self.registry.get(name)
        except Exception:
            return None
        return spec if spec.kind in TEXT_TO_IMAGE_KINDS else None

    # ----- applying -----

    def imagine_options(self, options: ImagineOptions, defaults: Defaults) -> ImagineOptions:
        """/imagine's options with the defaults filled in where the member gave none."""
        changes: dict[str, Any] = {}
        if options.model is None and self._spec(defaults.model) is not None:
            changes["model"] = defaults.model
        if options.aspect is None and defaults.aspect in ASPECTS:
            changes["aspect"] = defaults.aspect
        if options.negative is None and defaults.negative:
            changes["negative"] = defaults.negative
        if options.steps is None and defaults.steps is not None and options.quality != "fast":
            try:
                spec = model_spec(self.registry, changes.get("model", options.model))
            except InvalidOption:  # an unknown model given in the command: its own check says so
                spec = None
            if spec is not None and 1 <= defaults.steps <= spec.max_steps:
                changes["steps"] = defaults.steps
        if defaults.style and hasattr(options, "style") and options.style is None:
            changes["style"] = defaults.style
        return dataclasses.replace(options, **changes) if changes else options

    @staticmethod
    def aspect(given: str | None, defaults: Defaults, allowed: tuple[str, ...] | list[str]) -> str | None:
        """A command's aspect: the one given, else the default when that command offers it."""
        if given is not None:
            return given
        return defaults.aspect if defaults.aspect in allowed else None

    @staticmethod
    def negative(given: str | None, defaults: Defaults) -> str | None:
        return given if given is not None else defaults.negative
