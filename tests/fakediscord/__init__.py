"""A protocol-level fake Discord (gateway websocket + REST) for end-to-end tests of the bot.

The real, unmodified discord.py client connects to it; see ``FakeDiscord`` and ``fixtures.py``.
"""

from .server import FakeDiscord, Fault
from .state import EPHEMERAL, LOADING, Attachment, Clock, DiscordError, Interaction, Message

__all__ = ["EPHEMERAL", "LOADING", "Attachment", "Clock", "DiscordError", "FakeDiscord", "Fault",
           "Interaction", "Message"]
