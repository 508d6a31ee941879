"""The simulated REST API: Discord's routes, JSON shapes and rate-limit headers.

Route templates are discord.py's own (``/channels/{channel_id}/messages``,
``/webhooks/{webhook_id}/{webhook_token}``, ...), so a recorded call's
``route`` is exactly the ``url.template`` the instrumentation reports.
Anything not implemented answers 404 with Discord's error JSON and is recorded
in :attr:`RestApi.unknown_endpoints`; a handler that fails answers 500 and never
takes the simulator down.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from discord_otel.simulator.faults import SCOPE_HEADER, Fault, Faults
from discord_otel.simulator.gateway import Gateway
from discord_otel.simulator.state import (
    JSON,
    ApplicationCommand,
    Channel,
    PendingInteraction,
    SimulatorState,
    User,
)

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v{version}"
BUCKET_LIMIT = 50  # generous: the simulator throttles only through injected faults
EPHEMERAL = 1 << 6

# The parsed request body, read once by the middleware for the call log.
REQUEST_BODY: web.RequestKey[Any] = web.RequestKey("simulator_body", object)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RestCall:
    """One REST call the bot made, as the simulator answered it."""

    method: str
    route: str  # the template, e.g. "/channels/{channel_id}/messages"; the raw path if unknown
    path: str
    status: int
    json: Any = None  # the request body (``payload_json`` of a multipart body)
    response: Any = None
    query: dict[str, str] = field(default_factory=dict)
    at: float = 0.0  # loop time the response was sent
    known: bool = True
    headers: dict[str, str] = field(default_factory=dict)  # the response's headers

    @property
    def retried_by_client(self) -> bool:
        """A 429 or 5xx: discord.py retries it, so it is not yet the bot's reaction."""
        return self.status == 429 or self.status >= 500

    @property
    def key(self) -> str:
        """``METHOD /template``, how routes are named in summaries and faults."""
        return f"{self.method} {self.route}"


class DiscordError(Exception):
    """Answer with Discord's error JSON."""

    def __init__(self, status: int, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # discord.py compares the content type to exactly "application/json" (no charset).
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


def ratelimit_headers(template: str, remaining: int, reset_after: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(BUCKET_LIMIT),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": hashlib.sha1(template.encode()).hexdigest()[:16],
    }


_ID_SEGMENT = re.compile(r"/(\d{5,}|[A-Za-z0-9_\-]{40,})(?=/|$)")


def scrub_path(path: str) -> str:
    """An unknown path with ids and tokens replaced, fit for a summary."""
    return _ID_SEGMENT.sub("/{id}", path)


class RestApi:
    """The REST routes, bound to the simulator's state, gateway and faults."""

    def __init__(
        self,
        state: SimulatorState,
        gateway: Gateway,
        faults: Faults,
        *,
        shards: Callable[[], int],
        base_url: Callable[[], str],
        on_call: Callable[[RestCall], None],
    ) -> None:
        self.state = state
        self.gateway = gateway
        self.faults = faults
        self._shards = shards
        self._base_url = base_url
        self._on_call = on_call
        self.log: list[RestCall] = []
        self.unknown_endpoints: list[str] = []

    # -- wiring -------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self.get_me),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", "/applications/{application_id}/commands", self.list_commands),
            ("PUT", "/applications/{application_id}/commands", self.sync_commands),
            ("POST", "/applications/{application_id}/commands", self.create_command),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self.list_commands,
            ),
            (
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self.sync_commands,
            ),
            (
                "POST",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self.create_command,
            ),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("GET", "/channels/{channel_id}/messages", self.list_messages),
            ("POST", "/channels/{channel_id}/messages", self.create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message),
            ("POST", "/channels/{channel_id}/typing", self.no_content),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self.add_reaction,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self.no_content,
            ),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/members/{member_id}", self.get_member),
            (
                "POST",
                "/interactions/{webhook_id}/{webhook_token}/callback",
                self.interaction_callback,
            ),
            (
                "GET",
                "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
                self.get_webhook_message,
            ),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
                self.edit_webhook_message,
            ),
            (
                "DELETE",
                "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
                self.delete_webhook_message,
            ),
            (
                "GET",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self.get_webhook_message,
            ),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self.edit_webhook_message,
            ),
            (
                "DELETE",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self.delete_webhook_message,
            ),
            ("GET", "/webhooks/{webhook_id}/{webhook_token}", self.get_webhook),
            ("POST", "/webhooks/{webhook_id}/{webhook_token}", self.execute_webhook),
        ]
        resources: dict[str, web.Resource] = {}
        for method, template, handler in routes:
            if template not in resources:
                pattern = re.sub(r"\{(\w+_id)\}", r"{\1:\\d+}", template)
                resources[template] = app.router.add_resource(API_PREFIX + pattern)
            resources[template].add_route(method, handler)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Faults, rate-limit headers, Discord's errors and the call log, around every route."""
        if request.path == "/gateway" or request.path.startswith("/gateway?"):
            return await handler(request)
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else ""
        template = canonical[len(API_PREFIX) :] if canonical.startswith(API_PREFIX) else None
        body = await _read_body(request)
        known = template is not None and request.match_info.http_exception is None
        if not known:
            call_route = scrub_path(_strip_prefix(request.path))
            self.unknown_endpoints.append(f"{request.method} {call_route}")
            response = json_response({"message": "404: Not Found", "code": 0}, status=404)
            self._record(request, call_route, response, body, None, known=False)
            return response
        assert template is not None
        delay, fault = self.faults.for_call(request.method, template)
        if delay:
            await asyncio.sleep(delay)
        if fault is not None:
            response = self._fault_response(fault, template)
            self._record(request, template, response, body, None)
            return response
        request[REQUEST_BODY] = body
        try:
            result = await handler(request)
        except DiscordError as exc:
            result = json_response({"message": exc.message, "code": exc.code}, status=exc.status)
        except Exception:
            logger.exception("simulator: %s %s failed", request.method, template)
            result = json_response({"message": "500: Internal Server Error", "code": 0}, status=500)
        result.headers.update(ratelimit_headers(template, BUCKET_LIMIT - 1, 1.0))
        self._record(request, template, result, body, getattr(result, "sim_json", None))
        return result

    def _fault_response(self, fault: Fault, template: str) -> web.Response:
        if fault.kind == "server_error":
            return json_response(
                {"message": f"{fault.status}: Server Error", "code": 0}, status=fault.status
            )
        is_global = fault.scope == "global"
        headers = {
            **ratelimit_headers(template, 0, fault.retry_after),
            "Retry-After": str(max(1, round(fault.retry_after))),
            "X-RateLimit-Scope": SCOPE_HEADER[fault.scope],
            # discord.py treats a 429 without "Via" as a Cloudflare ban.
            "Via": "1.1 google",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": fault.retry_after,
            "global": is_global,
        }
        if fault.scope == "shared":
            body["code"] = 0
        return json_response(body, status=429, headers=headers)

    def _record(
        self,
        request: web.Request,
        template: str,
        response: web.StreamResponse,
        body: Any,
        response_json: Any,
        *,
        known: bool = True,
    ) -> None:
        call = RestCall(
            method=request.method,
            route=template,
            path=_strip_prefix(request.path),
            status=response.status,
            json=body,
            response=response_json,
            query=dict(request.query),
            at=asyncio.get_running_loop().time(),
            known=known,
            headers=dict(response.headers),
        )
        self.log.append(call)
        self._on_call(call)

    # -- small helpers ------------------------------------------------------------

    def _reply(self, data: Any, status: int = 200) -> web.Response:
        response = json_response(data, status=status)
        response.sim_json = data  # type: ignore[attr-defined]
        return response

    def _channel(self, request: web.Request) -> Channel:
        channel = self.state.channel(int(request.match_info["channel_id"]))
        if channel is None:
            raise DiscordError(404, "Unknown Channel", 10003)
        return channel

    def _message(self, request: web.Request) -> JSON:
        message = self.state.messages.get(int(request.match_info["message_id"]))
        if message is None:
            raise DiscordError(404, "Unknown Message", 10008)
        return message

    def _interaction(self, token: str) -> PendingInteraction | None:
        return self.state.interactions.get(token)

    def _post_message(
        self,
        channel: Channel,
        body: JSON,
        *,
        author: User | None = None,
        interaction: PendingInteraction | None = None,
        webhook_id: int | None = None,
    ) -> JSON:
        message = self.state.message_payload(
            channel=channel,
            author=author or self.state.bot_user,
            content=str(body.get("content") or ""),
            body=body,
            interaction=interaction,
            webhook_id=webhook_id,
        )
        self.state.store_message(message)
        if not int(message["flags"]) & EPHEMERAL:
            self.gateway.dispatch("MESSAGE_CREATE", message, guild_id=channel.guild_id)
        return message

    def _edit(self, message: JSON, body: JSON) -> JSON:
        for key in ("content", "embeds", "components", "flags"):
            if key in body and body[key] is not None:
                message[key] = body[key]
        message["edited_timestamp"] = _now_iso()
        if not int(message.get("flags") or 0) & EPHEMERAL:
            self.gateway.dispatch("MESSAGE_UPDATE", message, guild_id=int(message["guild_id"]))
        return message

    # -- users, application, gateway ----------------------------------------------

    async def get_me(self, request: web.Request) -> web.Response:
        user = self.state.bot_user.payload()
        return self._reply(
            {**user, "verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US"}
        )

    async def get_application(self, request: web.Request) -> web.Response:
        return self._reply(self.state.application_payload())

    async def get_gateway(self, request: web.Request) -> web.Response:
        return self._reply({"url": self._ws_url()})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return self._reply(
            {
                "url": self._ws_url(),
                "shards": self._shards(),
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 16,
                },
            }
        )

    def _ws_url(self) -> str:
        return self._base_url().replace("http", "ws", 1) + "/gateway"

    # -- application commands -----------------------------------------------------

    def _guild_scope(self, request: web.Request) -> int | None:
        guild_id = request.match_info.get("guild_id")
        return int(guild_id) if guild_id is not None else None

    async def list_commands(self, request: web.Request) -> web.Response:
        scope = self._guild_scope(request)
        return self._reply(
            [c.payload() for c in self.state.commands.values() if c.guild_id == scope]
        )

    async def sync_commands(self, request: web.Request) -> web.Response:
        scope = self._guild_scope(request)
        body = request[REQUEST_BODY]
        if not isinstance(body, list):
            raise DiscordError(400, "Invalid Form Body", 50035)
        for command_id in [i for i, c in self.state.commands.items() if c.guild_id == scope]:
            del self.state.commands[command_id]
        created = []
        for data in body:
            command = ApplicationCommand(
                self.state.snowflakes.next(), self.state.application_id, scope, data
            )
            self.state.commands[command.id] = command
            created.append(command.payload())
        self.state.commands_synced = True
        return self._reply(created)

    async def create_command(self, request: web.Request) -> web.Response:
        scope = self._guild_scope(request)
        body = _json_body(request)
        existing = self.state.find_command(str(body.get("name")), int(body.get("type", 1)))
        if existing is not None and existing.guild_id == scope:
            del self.state.commands[existing.id]
        command = ApplicationCommand(
            self.state.snowflakes.next(), self.state.application_id, scope, body
        )
        self.state.commands[command.id] = command
        self.state.commands_synced = True
        return self._reply(command.payload(), status=201)

    # -- guilds and channels ------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        try:
            guild = self.state.guild(int(request.match_info["guild_id"]))
        except KeyError:
            raise DiscordError(404, "Unknown Guild", 10004) from None
        payload = guild.payload()
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at"):
            payload.pop(key, None)
        return self._reply(payload)

    async def get_member(self, request: web.Request) -> web.Response:
        try:
            guild = self.state.guild(int(request.match_info["guild_id"]))
        except KeyError:
            raise DiscordError(404, "Unknown Guild", 10004) from None
        member = guild.member(int(request.match_info["member_id"]))
        if member is None:
            raise DiscordError(404, "Unknown Member", 10007)
        return self._reply(member.payload())

    async def get_channel(self, request: web.Request) -> web.Response:
        return self._reply(self._channel(request).payload())

    # -- messages -----------------------------------------------------------------

    async def list_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        limit = min(int(request.query.get("limit", "50")), 100)
        found = [
            m for m in reversed(self.state.messages.values()) if m["channel_id"] == str(channel.id)
        ]
        return self._reply(found[:limit])

    async def create_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body = _json_body(request)
        if not (
            body.get("content")
            or body.get("embeds")
            or body.get("components")
            or body.get("attachments")
        ):
            raise DiscordError(400, "Cannot send an empty message", 50006)
        return self._reply(self._post_message(channel, body))

    async def get_message(self, request: web.Request) -> web.Response:
        self._channel(request)
        return self._reply(self._message(request))

    async def edit_message(self, request: web.Request) -> web.Response:
        self._channel(request)
        return self._reply(self._edit(self._message(request), _json_body(request)))

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(request)
        del self.state.messages[int(message["id"])]
        self.gateway.dispatch(
            "MESSAGE_DELETE",
            {"id": message["id"], "channel_id": str(channel.id), "guild_id": str(channel.guild_id)},
            guild_id=channel.guild_id,
        )
        return web.Response(status=204)

    async def add_reaction(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(request)
        emoji = request.match_info["emoji"]
        name, _, emoji_id = emoji.partition(":")
        self.gateway.dispatch(
            "MESSAGE_REACTION_ADD",
            {
                "user_id": str(self.state.bot_user.id),
                "channel_id": str(channel.id),
                "message_id": message["id"],
                "guild_id": str(channel.guild_id),
                "emoji": {"id": emoji_id or None, "name": name},
                "burst": False,
                "type": 0,
            },
            guild_id=channel.guild_id,
        )
        return web.Response(status=204)

    async def no_content(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    # -- interactions -------------------------------------------------------------

    async def interaction_callback(self, request: web.Request) -> web.Response:
        pending = self._interaction(request.match_info["webhook_token"])
        if pending is None or str(pending.id) != request.match_info["webhook_id"]:
            raise DiscordError(404, "Unknown interaction", 10062)
        if pending.responded:
            raise DiscordError(400, "Interaction has already been acknowledged.", 40060)
        body = _json_body(request)
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        channel = self.state.channel(pending.channel_id)
        assert channel is not None
        pending.responded = True
        message: JSON | None = None
        loading = False
        if kind == 4:  # CHANNEL_MESSAGE_WITH_SOURCE
            message = self._post_message(channel, data, interaction=pending)
            pending.original_message_id = int(message["id"])
        elif kind == 5:  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: a "thinking..." message
            loading = True
            message = self._post_message(
                channel,
                {"content": "", "flags": data.get("flags", 0) | 128, "components": []},
                interaction=pending,
            )
            pending.original_message_id = int(message["id"])
        elif kind == 7 and pending.source_message_id is not None:  # UPDATE_MESSAGE
            source = self.state.messages.get(pending.source_message_id)
            if source is not None:
                message = self._edit(source, data)
        elif kind == 9:  # MODAL
            self.state.opened_modals[str(data.get("custom_id"))] = data
        elif kind not in (1, 6, 8):
            pending.responded = False
            raise DiscordError(400, "Invalid Form Body", 50035)
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        result: JSON = {
            "interaction": {
                "id": str(pending.id),
                "type": pending.type,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": loading,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL),
            },
        }
        if message is not None:
            result["resource"] = {"type": kind, "message": message}
        elif kind != 1:
            result["resource"] = {"type": kind}
        return self._reply(result)

    # -- webhooks (followups and @original ride on the interaction token) ---------

    def _webhook_target(
        self, request: web.Request
    ) -> tuple[Channel, PendingInteraction | None, int]:
        token = request.match_info["webhook_token"]
        webhook_id = int(request.match_info["webhook_id"])
        pending = self._interaction(token)
        if pending is not None:
            if webhook_id != self.state.application_id:
                raise DiscordError(404, "Unknown Webhook", 10015)
            channel = self.state.channel(pending.channel_id)
            assert channel is not None
            return channel, pending, webhook_id
        # Any other webhook is accepted and posts in the first guild's first channel.
        self.state.webhook_tokens.setdefault(webhook_id, token)
        if self.state.webhook_tokens[webhook_id] != token:
            raise DiscordError(401, "Invalid Webhook Token", 50027)
        return self.state.guilds[0].text_channel, None, webhook_id

    def _webhook_message(self, request: web.Request) -> JSON:
        _, pending, _ = self._webhook_target(request)
        raw_id = request.match_info.get("message_id")
        if raw_id is None:  # @original
            if pending is None or pending.original_message_id is None:
                raise DiscordError(404, "Unknown Message", 10008)
            message_id = pending.original_message_id
        else:
            message_id = int(raw_id)
        message = self.state.messages.get(message_id)
        if message is None:
            raise DiscordError(404, "Unknown Message", 10008)
        return message

    async def get_webhook(self, request: web.Request) -> web.Response:
        channel, _, webhook_id = self._webhook_target(request)
        return self._reply(
            self._webhook_payload(channel, webhook_id, request.match_info["webhook_token"])
        )

    def _webhook_payload(self, channel: Channel, webhook_id: int, token: str) -> JSON:
        return {
            "id": str(webhook_id),
            "type": 1,
            "guild_id": str(channel.guild_id),
            "channel_id": str(channel.id),
            "name": "Simulated Webhook",
            "avatar": None,
            "token": token,
            "application_id": None,
        }

    async def execute_webhook(self, request: web.Request) -> web.Response:
        channel, pending, webhook_id = self._webhook_target(request)
        body = _json_body(request)
        if pending is not None:  # an interaction followup
            message = self._post_message(channel, body, interaction=pending, webhook_id=webhook_id)
            if pending.original_message_id is None:
                pending.original_message_id = int(message["id"])
            return self._reply(message)
        author = User(webhook_id, str(body.get("username") or "Simulated Webhook"), bot=True)
        message = self._post_message(channel, body, author=author, webhook_id=webhook_id)
        if request.query.get("wait", "").lower() in ("1", "true"):
            return self._reply(message)
        return web.Response(status=204)

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        return self._reply(self._webhook_message(request))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_message(request)
        body = _json_body(request)
        # Editing a deferred "thinking" response replaces it for good.
        message["flags"] = int(message.get("flags") or 0) & ~128
        return self._reply(self._edit(message, body))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_message(request)
        self.state.messages.pop(int(message["id"]), None)
        return web.Response(status=204)


def _json_body(request: web.Request) -> JSON:
    body = request[REQUEST_BODY]
    return dict(body) if isinstance(body, dict) else {}


def _strip_prefix(path: str) -> str:
    match = re.match(r"^/api/v\d+", path)
    return path[match.end() :] if match else path


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


async def _read_body(request: web.Request) -> Any:
    """The JSON body, or the ``payload_json`` part of a multipart body (files)."""
    if not request.can_read_body:
        return None
    content_type = request.content_type
    try:
        if content_type.startswith("multipart/"):
            form = await request.post()
            raw = form.get("payload_json")
            return json.loads(raw) if isinstance(raw, str) else None
        text = await request.text()
        return json.loads(text) if text else None
    except (ValueError, UnicodeDecodeError):
        return None
