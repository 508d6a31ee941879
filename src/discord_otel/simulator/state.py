"""The simulated Discord's world: users, guilds, channels, roles, members,
messages, registered application commands and pending interactions.

Everything here is plain data plus the builders of Discord's JSON payloads, so
the gateway and the REST API agree on one shape for each object.
"""

from __future__ import annotations

import datetime
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1420070400000
# Guild snowflakes are spaced so that guild i lands on shard i % n for any n up
# to 16: 720720 is the least common multiple of 1..16.
_SHARD_SPREAD = 720720

JSON = dict[str, Any]


class SnowflakeFactory:
    """Makes unique, increasing snowflakes, as Discord's id workers do."""

    def __init__(self, worker: int = 1) -> None:
        self._worker = worker & 0x1F
        self._increment = itertools.count()

    def next(self) -> int:
        elapsed = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (elapsed << 22) | (self._worker << 17) | (next(self._increment) & 0x1FFFF)

    @staticmethod
    def for_guild(index: int) -> int:
        """A guild id whose ``(id >> 22) % shards`` is ``index % shards``."""
        elapsed = int(time.time() * 1000) - DISCORD_EPOCH_MS
        base = elapsed - elapsed % _SHARD_SPREAD
        return ((base + index) << 22) | (2 << 17) | index


def shard_for_guild(guild_id: int, shard_count: int) -> int:
    """Discord's routing of a guild to a shard."""
    return (guild_id >> 22) % max(shard_count, 1)


def new_token(prefix: str = "") -> str:
    """A random interaction or webhook token, unique like Discord's."""
    return prefix + secrets.token_urlsafe(48)


def iso_timestamp(snowflake: int | None = None) -> str:
    if snowflake is None:
        moment = datetime.datetime.now(datetime.timezone.utc)
    else:
        ms = (snowflake >> 22) + DISCORD_EPOCH_MS
        moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return moment.isoformat()


@dataclass
class User:
    id: int
    username: str
    bot: bool = False

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": None if self.bot else self.username.title(),
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class Role:
    id: int
    name: str
    position: int
    permissions: int

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class Channel:
    id: int
    guild_id: int
    name: str
    position: int = 0
    type: int = 0  # GUILD_TEXT

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }


@dataclass
class Member:
    user: User
    role_ids: list[int]
    joined_at: str = field(default_factory=iso_timestamp)

    def payload(self, *, with_user: bool = True) -> JSON:
        data: JSON = {
            "roles": [str(role_id) for role_id in self.role_ids],
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


ALL_PERMISSIONS = (1 << 53) - 1
DEFAULT_PERMISSIONS = 0x0000_0006_3FFF_FEC1 & ~0x8  # everything but administrator


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    channels: list[Channel]
    roles: list[Role]
    members: list[Member]

    @property
    def text_channel(self) -> Channel:
        return self.channels[0]

    def member(self, user_id: int) -> Member | None:
        return next((m for m in self.members if m.user.id == user_id), None)

    def payload(self) -> JSON:
        """The full GUILD_CREATE payload."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [role.payload() for role in self.roles],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(self.text_channel.id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": iso_timestamp(),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "voice_states": [],
            # Like Discord, GUILD_CREATE carries only some members (here the owner and
            # the bot); the rest arrive in GUILD_MEMBERS_CHUNK when the bot asks (op 8).
            "members": [
                m.payload() for m in self.members if m.user.bot or m.user.id == self.owner_id
            ],
            "channels": [channel.payload() for channel in self.channels],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class ApplicationCommand:
    """A command the bot registered through a sync (PUT) or a create (POST)."""

    id: int
    application_id: int
    guild_id: int | None
    data: JSON

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def type(self) -> int:
        return int(self.data.get("type", 1))

    def payload(self) -> JSON:
        body = dict(self.data)
        body.setdefault("type", 1)
        body.setdefault("description", "")
        body.setdefault("options", [])
        body.update(
            id=str(self.id),
            application_id=str(self.application_id),
            version=str(self.id),
            default_member_permissions=body.get("default_member_permissions"),
            dm_permission=body.get("dm_permission", True),
            nsfw=body.get("nsfw", False),
        )
        if self.guild_id is not None:
            body["guild_id"] = str(self.guild_id)
        return body


@dataclass
class PendingInteraction:
    """An interaction the simulator sent, until the bot is done with it."""

    id: int
    token: str
    type: int
    guild_id: int
    channel_id: int
    user_id: int
    name: str
    responded: bool = False
    original_message_id: int | None = None
    source_message_id: int | None = None  # the message whose component was used


class SimulatorState:
    """Everything the simulated Discord knows."""

    def __init__(self, guild_count: int = 1, members_per_guild: int = 5) -> None:
        self.snowflakes = SnowflakeFactory()
        self.application_id = self.snowflakes.next()
        self.bot_user = User(self.application_id, "simulated-bot", bot=True)
        self.owner = User(self.snowflakes.next(), "owner")
        self.guilds: list[Guild] = [
            self._make_guild(index, members_per_guild) for index in range(guild_count)
        ]
        self.messages: dict[int, JSON] = {}
        self.commands: dict[int, ApplicationCommand] = {}
        self.interactions: dict[str, PendingInteraction] = {}
        self.opened_modals: dict[str, JSON] = {}
        self.webhook_tokens: dict[int, str] = {}
        self.commands_synced = False

    def _make_guild(self, index: int, member_count: int) -> Guild:
        guild_id = SnowflakeFactory.for_guild(index)
        everyone = Role(guild_id, "@everyone", 0, DEFAULT_PERMISSIONS)
        moderator = Role(self.snowflakes.next(), "Moderator", 1, ALL_PERMISSIONS)
        users = [self.owner] + [
            User(self.snowflakes.next(), f"member{number}") for number in range(1, member_count)
        ]
        members = [Member(user, [moderator.id] if user is self.owner else []) for user in users]
        members.append(Member(self.bot_user, [moderator.id]))
        channels = [
            Channel(self.snowflakes.next(), guild_id, "general", 0),
            Channel(self.snowflakes.next(), guild_id, "bot-commands", 1),
        ]
        return Guild(
            guild_id,
            f"Simulated Guild {index}",
            self.owner.id,
            channels,
            [everyone, moderator],
            members,
        )

    # -- lookups ---------------------------------------------------------------

    def guild(self, index_or_id: int) -> Guild:
        for guild in self.guilds:
            if guild.id == index_or_id:
                return guild
        if 0 <= index_or_id < len(self.guilds):
            return self.guilds[index_or_id]
        raise KeyError(f"no guild {index_or_id}")

    def channel(self, channel_id: int) -> Channel | None:
        for guild in self.guilds:
            for channel in guild.channels:
                if channel.id == channel_id:
                    return channel
        return None

    def find_command(self, name: str, command_type: int) -> ApplicationCommand | None:
        """The registered command with this top-level name and type, newest first."""
        for command in reversed(list(self.commands.values())):
            if command.name == name and command.type == command_type:
                return command
        return None

    def latest_message_with_component(self, custom_id: str) -> JSON | None:
        for message in reversed(list(self.messages.values())):
            if custom_id in _component_ids(message.get("components", [])):
                return message
        return None

    def latest_bot_message(self) -> JSON | None:
        bot_id = str(self.bot_user.id)
        for message in reversed(list(self.messages.values())):
            if message["author"]["id"] == bot_id:
                return message
        return None

    # -- payload builders ------------------------------------------------------

    def application_payload(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": "Simulated Application",
            "icon": None,
            "description": "An application served by the discord-otel simulator.",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.owner.payload(),
            "team": None,
            "flags": (1 << 15) | (1 << 19),  # gateway members/message content intents, limited
            "hook": True,
            "bot": self.bot_user.payload(),
            "tags": [],
            "approximate_guild_count": len(self.guilds),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "integration_types_config": {"0": {}},
        }

    def message_payload(
        self,
        *,
        channel: Channel,
        author: User,
        content: str,
        body: JSON | None = None,
        message_id: int | None = None,
        interaction: PendingInteraction | None = None,
        webhook_id: int | None = None,
    ) -> JSON:
        """A message as Discord returns and dispatches it; ``body`` is what the bot sent."""
        body = body or {}
        message_id = message_id if message_id is not None else self.snowflakes.next()
        data: JSON = {
            "id": str(message_id),
            "type": 0 if interaction is None else 20,
            "channel_id": str(channel.id),
            "guild_id": str(channel.guild_id),
            "author": author.payload(),
            "content": content,
            "timestamp": iso_timestamp(message_id),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": list(body.get("embeds") or []),
            "components": list(body.get("components") or []),
            "pinned": False,
            "flags": int(body.get("flags") or 0),
        }
        if body.get("nonce") is not None:
            data["nonce"] = body["nonce"]
        if webhook_id is not None:
            data["webhook_id"] = str(webhook_id)
        if interaction is not None:
            data["application_id"] = str(self.application_id)
            data["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self._user_payload(interaction.user_id),
                "authorizing_integration_owners": {"0": str(interaction.guild_id)},
            }
        if not author.bot:
            guild = self.guild(channel.guild_id)
            member = guild.member(author.id)
            if member is not None:
                data["member"] = member.payload(with_user=False)
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id"):
            data["message_reference"] = {
                "message_id": str(reference["message_id"]),
                "channel_id": str(channel.id),
                "guild_id": str(channel.guild_id),
            }
        return data

    def _user_payload(self, user_id: int) -> JSON:
        for guild in self.guilds:
            member = guild.member(user_id)
            if member is not None:
                return member.user.payload()
        return User(user_id, "unknown").payload()

    def interaction_payload(
        self,
        pending: PendingInteraction,
        data: JSON | None,
        *,
        message: JSON | None = None,
    ) -> JSON:
        guild = self.guild(pending.guild_id)
        channel = self.channel(pending.channel_id) or guild.text_channel
        member = guild.member(pending.user_id) or guild.members[0]
        payload: JSON = {
            "id": str(pending.id),
            "application_id": str(self.application_id),
            "type": pending.type,
            "token": pending.token,
            "version": 1,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": channel.payload(),
            "member": {**member.payload(), "permissions": str(ALL_PERMISSIONS)},
            "app_permissions": str(ALL_PERMISSIONS),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if data is not None:
            payload["data"] = data
        if message is not None:
            payload["message"] = message
        return payload

    def new_interaction(
        self, interaction_type: int, guild: Guild, name: str, *, user_id: int | None = None
    ) -> PendingInteraction:
        pending = PendingInteraction(
            id=self.snowflakes.next(),
            token=new_token("aW50ZXJhY3Rpb24"),
            type=interaction_type,
            guild_id=guild.id,
            channel_id=guild.text_channel.id,
            user_id=user_id if user_id is not None else guild.owner_id,
            name=name,
        )
        self.interactions[pending.token] = pending
        # Bounded: old interactions are long expired on Discord too (15 minutes).
        if len(self.interactions) > 10_000:
            oldest = next(iter(self.interactions))
            del self.interactions[oldest]
        return pending

    def store_message(self, message: JSON) -> None:
        self.messages[int(message["id"])] = message
        if len(self.messages) > 5_000:
            del self.messages[next(iter(self.messages))]


def _component_ids(components: list[Any]) -> set[str]:
    found: set[str] = set()
    for component in components:
        if not isinstance(component, dict):
            continue
        custom_id = component.get("custom_id")
        if isinstance(custom_id, str):
            found.add(custom_id)
        for key in ("components", "accessory", "component"):
            nested = component.get(key)
            if isinstance(nested, list):
                found |= _component_ids(nested)
            elif isinstance(nested, dict):
                found |= _component_ids([nested])
    return found


def find_component(components: list[Any], custom_id: str) -> JSON | None:
    """The component with this custom_id anywhere in a message's component tree."""
    for component in components:
        if not isinstance(component, dict):
            continue
        if component.get("custom_id") == custom_id:
            return component
        for key in ("components", "accessory", "component"):
            nested = component.get(key)
            candidates = nested if isinstance(nested, list) else [nested] if nested else []
            found = find_component(candidates, custom_id)
            if found is not None:
                return found
    return None
