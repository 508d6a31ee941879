"""The :class:`Simulator`: a fake Discord on loopback that real discord.py bots run against."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web, web_app

from discord_otel.simulator.faults import Faults
from discord_otel.simulator.gateway import Gateway, GatewayOp
from discord_otel.simulator.redirect import redirect
from discord_otel.simulator.rest import RestApi, RestCall
from discord_otel.simulator.state import (
    JSON,
    ApplicationCommand,
    Guild,
    Member,
    PendingInteraction,
    SimulatorState,
    find_component,
)

if TYPE_CHECKING:
    from discord_otel.simulator.runner import ScenarioResult
    from discord_otel.simulator.scenario import Scenario

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _forget_middleware_chains() -> None:
    """Empty aiohttp's process-wide cache of middleware chains (an LRU of 1,024
    entries keyed by handler and application): its entries hold a stopped
    simulator's routes, hence its whole state and call log, until a hundred
    later simulators push them out. A test suite, a benchmark or a load test
    starts many; their full garbage collections grew to seconds. Other
    applications' chains are rebuilt on their next request."""
    cached = getattr(web_app, "_cached_build_middleware", None)  # aiohttp >= 3.10
    cache_clear = getattr(cached, "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


# Interaction types and the option types that need "resolved" data.
APPLICATION_COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
OPTION_USER, OPTION_CHANNEL, OPTION_ROLE, OPTION_MENTIONABLE = 6, 7, 8, 9


class ReactionTimeout(asyncio.TimeoutError):
    """The bot did not react to a step in time."""


class StepFailed(RuntimeError):
    """A step cannot be performed (no such command, component or modal)."""


@dataclass
class _Waiter:
    """Collects the REST calls that react to one thing the simulator sent."""

    specific: set[str]  # ids and tokens that only this reaction can carry
    channel_id: str | None
    calls: list[RestCall] = field(default_factory=list)
    first: asyncio.Event = field(default_factory=asyncio.Event)

    def specific_match(self, call: RestCall) -> bool:
        if any(key in call.path for key in self.specific):
            return True
        body = call.json if isinstance(call.json, dict) else {}
        reference = body.get("message_reference")
        return isinstance(reference, dict) and str(reference.get("message_id")) in self.specific

    def take(self, call: RestCall) -> None:
        self.calls.append(call)
        if not call.retried_by_client:
            self.first.set()


class Simulator:
    """A local fake Discord: REST API and gateway on one loopback port.

    ``shards`` is what ``GET /gateway/bot`` recommends (an AutoShardedClient
    follows it); ``guilds`` is how many guilds the bot is in, each with text
    channels, roles and members. Use it as ``async with Simulator() as sim:``
    or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        shards: int = 1,
        guilds: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        members_per_guild: int = 5,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the simulator listens on loopback only, not {host!r}")
        if shards < 1 or guilds < 1:
            raise ValueError("shards and guilds must be at least 1")
        self.shards = shards
        self.host = host
        self.port = port
        self.token = "simulated." + secrets.token_urlsafe(24)
        self.state = SimulatorState(guild_count=guilds, members_per_guild=members_per_guild)
        self.faults = Faults()
        self.gateway = Gateway(self.state, lambda: self.url)
        self.rest = RestApi(
            self.state,
            self.gateway,
            self.faults,
            shards=lambda: self.shards,
            base_url=lambda: self.url,
            on_call=self._on_rest_call,
        )
        self._waiters: list[_Waiter] = []
        self._runner: web.AppRunner | None = None
        self._message_templates: dict[tuple[str, int, int], tuple[str, str]] = {}
        self.started_at = 0.0

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Start serving; :attr:`url` is valid afterwards."""
        app = web.Application(middlewares=[self.rest.middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        self.rest.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self.started_at = time.monotonic()

    async def stop(self) -> None:
        """Close every gateway connection and stop serving."""
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            _forget_middleware_chains()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def redirect(self) -> contextlib.AbstractContextManager[None]:
        """Point discord.py in this process at the simulator (restored on exit)."""
        return redirect(self.url)

    # -- what tests look at ------------------------------------------------------

    @property
    def rest_log(self) -> list[RestCall]:
        """Every REST call the bot made, in order."""
        return self.rest.log

    @property
    def unknown_endpoints(self) -> list[str]:
        """``METHOD /path`` of every call to a route the simulator does not implement."""
        return self.rest.unknown_endpoints

    @property
    def gateway_ops(self) -> list[GatewayOp]:
        """Every opcode the bot sent to the gateway (IDENTIFY, RESUME, HEARTBEAT, ...)."""
        return self.gateway.ops

    @property
    def commands(self) -> list[ApplicationCommand]:
        """The application commands the bot registered."""
        return list(self.state.commands.values())

    def guild(self, index: int = 0) -> Guild:
        return self.state.guild(index)

    async def wait_ready(self, timeout: float = 30, *, commands: bool = False) -> None:
        """Wait until every shard the bot identified with got READY (and, with
        ``commands``, until it synced its application commands)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self.gateway.all_ready() and (self.state.commands_synced or not commands)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ReactionTimeout(
                    f"the bot did not connect within {timeout:g}s "
                    f"({len(self.gateway.live)} of {self.gateway.shard_count or '?'} shards ready)"
                )
            self.gateway.ready_changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.gateway.ready_changed.wait(), min(remaining, 0.05))

    # -- reactions ---------------------------------------------------------------

    def _on_rest_call(self, call: RestCall) -> None:
        if not self._waiters:
            return
        for waiter in self._waiters:
            if waiter.specific_match(call):
                waiter.take(call)
                return
        channel_waiters = [w for w in self._waiters if w.channel_id and w.channel_id in call.path]
        if not channel_waiters:
            return
        # A call in the channel goes to the oldest step still waiting there, else
        # it follows on from the latest one that already got a reaction.
        unanswered = [w for w in channel_waiters if not w.first.is_set()]
        (unanswered[0] if unanswered else channel_waiters[-1]).take(call)

    async def _react(
        self,
        send: Callable[[], Any],
        *,
        specific: set[str],
        channel_id: int | None,
        what: str,
        timeout: float,
        settle: float = 0.05,
    ) -> list[RestCall]:
        waiter = _Waiter(specific, str(channel_id) if channel_id is not None else None)
        self._waiters.append(waiter)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            send()
            try:
                await asyncio.wait_for(waiter.first.wait(), timeout)
            except asyncio.TimeoutError:
                raise ReactionTimeout(
                    f"the bot did not react to {what} within {timeout:g}s"
                ) from None
            # Collect what follows (a typing call, then the message) until the bot is quiet.
            while settle > 0 and loop.time() < deadline:
                seen = len(waiter.calls)
                await asyncio.sleep(settle)
                if len(waiter.calls) == seen:
                    break
            return list(waiter.calls)
        finally:
            self._waiters.remove(waiter)

    # -- driving the bot: messages -----------------------------------------------

    def _actor(self, guild: Guild, author: int | str | None) -> Member:
        if author is None:
            return guild.members[0]
        for member in guild.members:
            if author in (member.user.id, member.user.username):
                return member
        if isinstance(author, int) and 0 <= author < len(guild.members):
            return guild.members[author]
        raise StepFailed(f"no member {author!r} in {guild.name}")

    async def send_message(
        self,
        content: str,
        *,
        guild: int = 0,
        channel: int = 0,
        author: int | str | None = None,
        wait: bool = True,
        timeout: float = 10,
        settle: float = 0.05,
    ) -> list[RestCall]:
        """A member posts ``content`` in a guild text channel (MESSAGE_CREATE).

        With ``wait``, returns the REST calls the bot made in reaction (raises
        :class:`ReactionTimeout` if it made none); without, returns ``[]`` at once.
        """
        target_guild = self.state.guild(guild)
        target_channel = target_guild.channels[channel]
        member = self._actor(target_guild, author)
        if not wait:
            self._send_message_fast(content, target_guild, target_channel.id, member)
            return []
        message = self.state.message_payload(
            channel=target_channel, author=member.user, content=content
        )
        self.state.store_message(message)
        return await self._react(
            lambda: self.gateway.dispatch("MESSAGE_CREATE", message, guild_id=target_guild.id),
            specific={message["id"]},
            channel_id=target_channel.id,
            what=f"message {content!r}",
            timeout=timeout,
            settle=settle,
        )

    def _send_message_fast(
        self, content: str, guild: Guild, channel_id: int, member: Member
    ) -> None:
        # Floods: serialise each distinct message once, then only splice in a fresh id.
        key = (content, channel_id, member.user.id)
        template = self._message_templates.get(key)
        if template is None:
            channel = self.state.channel(channel_id)
            assert channel is not None
            payload = self.state.message_payload(
                channel=channel, author=member.user, content=content, message_id=0
            )
            payload["id"] = "\x00"
            head, _, tail = json.dumps(payload, separators=(",", ":")).partition('"\\u0000"')
            template = (head, tail)
            self._message_templates[key] = template
        head, tail = template
        self.gateway.dispatch_json(
            "MESSAGE_CREATE", f'{head}"{self.state.snowflakes.next()}"{tail}', guild_id=guild.id
        )

    async def flood(
        self, content: str, count: int, *, rate: float | None = None, guild: int = 0
    ) -> float:
        """Post ``count`` messages as fast as possible (or at ``rate`` per second);
        returns the rate reached, in messages per second."""
        target_guild = self.state.guild(guild)
        member = self._actor(target_guild, None)
        channel_id = target_guild.text_channel.id
        loop = asyncio.get_running_loop()
        started = loop.time()
        batch = 200 if rate is None else max(1, int(rate / 100))
        sent = 0
        while sent < count:
            for _ in range(min(batch, count - sent)):
                self._send_message_fast(content, target_guild, channel_id, member)
            sent += min(batch, count - sent)
            if rate is not None:
                delay = started + sent / rate - loop.time()
                await asyncio.sleep(max(delay, 0))
            else:
                await asyncio.sleep(0)
        await self._flush_connections()
        elapsed = loop.time() - started
        return count / elapsed if elapsed > 0 else float(count)

    async def _flush_connections(self) -> None:
        for connection in list(self.gateway.connections):
            await connection.flush(timeout=30)

    # -- driving the bot: interactions -------------------------------------------

    async def _find_command(
        self, name: str, command_type: int, timeout: float
    ) -> ApplicationCommand:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            command = self.state.find_command(name, command_type)
            if command is not None:
                return command
            if loop.time() >= deadline:
                kinds = {
                    CHAT_INPUT: "slash command",
                    USER_COMMAND: "user command",
                    MESSAGE_COMMAND: "message command",
                }
                registered = (
                    ", ".join(sorted(c.name for c in self.state.commands.values())) or "none"
                )
                raise StepFailed(
                    f"the bot registered no {kinds[command_type]} {name!r} "
                    f"(registered: {registered})"
                )
            await asyncio.sleep(0.02)

    async def _interact(
        self,
        pending: PendingInteraction,
        data: JSON,
        *,
        what: str,
        message: JSON | None = None,
        timeout: float,
        wait: bool = True,
    ) -> list[RestCall]:
        payload = self.state.interaction_payload(pending, data, message=message)

        def send() -> None:
            if not self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=pending.guild_id):
                raise StepFailed("no shard is connected for the interaction's guild")

        if not wait:
            send()
            return []
        return await self._react(
            send,
            specific={pending.token, str(pending.id)},
            channel_id=None,
            what=what,
            timeout=timeout,
        )

    def _resolve_options(
        self, definitions: list[JSON], given: dict[str, Any], guild: Guild, resolved: JSON
    ) -> list[JSON]:
        options = []
        by_name = {str(d.get("name")): d for d in definitions}
        for name, value in given.items():
            definition = by_name.get(name)
            if definition is None:
                known = ", ".join(by_name) or "none"
                raise StepFailed(f"the command has no option {name!r} (options: {known})")
            option_type = int(definition.get("type", 3))
            options.append(
                {
                    "name": name,
                    "type": option_type,
                    "value": self._option_value(option_type, value, guild, resolved),
                }
            )
        return options

    def _option_value(self, option_type: int, value: Any, guild: Guild, resolved: JSON) -> Any:
        if option_type in (OPTION_USER, OPTION_MENTIONABLE):
            member = self._actor(guild, value if not str(value).isdigit() else int(value))
            resolved.setdefault("users", {})[str(member.user.id)] = member.user.payload()
            resolved.setdefault("members", {})[str(member.user.id)] = {
                **member.payload(with_user=False),
                "permissions": "0",
            }
            return str(member.user.id)
        if option_type == OPTION_CHANNEL:
            channel = next(
                (c for c in guild.channels if value in (c.name, c.id, str(c.id))),
                guild.text_channel,
            )
            resolved.setdefault("channels", {})[str(channel.id)] = {
                **channel.payload(),
                "permissions": "0",
            }
            return str(channel.id)
        if option_type == OPTION_ROLE:
            role = next(
                (r for r in guild.roles if value in (r.name, r.id, str(r.id))), guild.roles[0]
            )
            resolved.setdefault("roles", {})[str(role.id)] = role.payload()
            return str(role.id)
        return value

    def _chat_input_data(
        self,
        command: ApplicationCommand,
        path: list[str],
        options: dict[str, Any],
        guild: Guild,
        *,
        focused: str | None = None,
    ) -> JSON:
        resolved: JSON = {}
        definitions: list[JSON] = list(command.data.get("options") or [])
        chain: list[JSON] = []
        for part in path:
            definition = next(
                (
                    d
                    for d in definitions
                    if d.get("name") == part and d.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)
                ),
                None,
            )
            if definition is None:
                raise StepFailed(f"the command {command.name!r} has no subcommand {part!r}")
            chain.append({"name": part, "type": definition["type"], "options": []})
            definitions = list(definition.get("options") or [])
        leaf = self._resolve_options(definitions, options, guild, resolved)
        if focused is not None:
            for option in leaf:
                if option["name"] == focused:
                    option["focused"] = True
                    option["value"] = str(option["value"])
        nested = leaf
        for link in reversed(chain):
            link["options"] = nested
            nested = [link]
        data: JSON = {
            "id": str(command.id),
            "name": command.name,
            "type": CHAT_INPUT,
            "options": nested,
        }
        if command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        if resolved:
            data["resolved"] = resolved
        return data

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        guild: int = 0,
        timeout: float = 10,
        wait: bool = True,
    ) -> list[RestCall]:
        """Invoke a chat-input command; ``name`` may include subcommands (``"config set"``)."""
        top, *path = name.split()
        command = await self._find_command(top, CHAT_INPUT, timeout)
        target = self.state.guild(guild)
        data = self._chat_input_data(command, path, dict(options or {}), target)
        pending = self.state.new_interaction(APPLICATION_COMMAND, target, name)
        return await self._interact(pending, data, what=f"/{name}", timeout=timeout, wait=wait)

    async def autocomplete(
        self,
        command: str,
        option: str,
        value: str,
        *,
        options: dict[str, Any] | None = None,
        guild: int = 0,
        timeout: float = 10,
    ) -> list[RestCall]:
        """Type ``value`` into ``option`` of a slash command; the bot answers with choices."""
        top, *path = command.split()
        registered = await self._find_command(top, CHAT_INPUT, timeout)
        target = self.state.guild(guild)
        data = self._chat_input_data(
            registered, path, {**(options or {}), option: value}, target, focused=option
        )
        pending = self.state.new_interaction(AUTOCOMPLETE, target, command)
        return await self._interact(
            pending, data, what=f"autocomplete of /{command} {option}", timeout=timeout
        )

    async def user_command(
        self, name: str, target: int | str | None = None, *, guild: int = 0, timeout: float = 10
    ) -> list[RestCall]:
        """Use a user context-menu command on a member (default: the first member)."""
        command = await self._find_command(name, USER_COMMAND, timeout)
        target_guild = self.state.guild(guild)
        member = self._actor(target_guild, target if target is not None else 1)
        data: JSON = {
            "id": str(command.id),
            "name": name,
            "type": USER_COMMAND,
            "target_id": str(member.user.id),
            "resolved": {
                "users": {str(member.user.id): member.user.payload()},
                "members": {
                    str(member.user.id): {**member.payload(with_user=False), "permissions": "0"}
                },
            },
        }
        if command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        pending = self.state.new_interaction(APPLICATION_COMMAND, target_guild, name)
        return await self._interact(pending, data, what=f"user command {name!r}", timeout=timeout)

    async def message_command(
        self, name: str, message_id: int | None = None, *, guild: int = 0, timeout: float = 10
    ) -> list[RestCall]:
        """Use a message context-menu command on a message (default: the bot's last message)."""
        command = await self._find_command(name, MESSAGE_COMMAND, timeout)
        target_guild = self.state.guild(guild)
        message = (
            self.state.messages.get(message_id) if message_id else self.state.latest_bot_message()
        )
        if message is None:
            message = self.state.message_payload(
                channel=target_guild.text_channel,
                author=target_guild.members[0].user,
                content="a message to quote",
            )
            self.state.store_message(message)
        data: JSON = {
            "id": str(command.id),
            "name": name,
            "type": MESSAGE_COMMAND,
            "target_id": message["id"],
            "resolved": {"messages": {message["id"]: message}},
        }
        if command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        pending = self.state.new_interaction(APPLICATION_COMMAND, target_guild, name)
        return await self._interact(
            pending, data, what=f"message command {name!r}", timeout=timeout
        )

    def _component_message(self, custom_id: str) -> tuple[JSON, JSON]:
        message = self.state.latest_message_with_component(custom_id)
        if message is None:
            raise StepFailed(f"no message from the bot carries a component {custom_id!r}")
        component = find_component(message.get("components", []), custom_id)
        assert component is not None
        return message, component

    async def _use_component(
        self, custom_id: str, extra: JSON, what: str, timeout: float
    ) -> list[RestCall]:
        message, component = self._component_message(custom_id)
        guild = self.state.guild(int(message["guild_id"]))
        pending = self.state.new_interaction(COMPONENT, guild, custom_id)
        pending.channel_id = int(message["channel_id"])
        pending.source_message_id = int(message["id"])
        data: JSON = {
            "custom_id": custom_id,
            "component_type": int(component.get("type", 2)),
            **extra,
        }
        return await self._interact(pending, data, what=what, message=message, timeout=timeout)

    async def click(self, custom_id: str, *, timeout: float = 10) -> list[RestCall]:
        """Press the button ``custom_id`` on the latest bot message carrying it."""
        return await self._use_component(custom_id, {}, f"a click on {custom_id!r}", timeout)

    async def select(
        self, custom_id: str, values: list[str], *, timeout: float = 10
    ) -> list[RestCall]:
        """Choose ``values`` in the select menu ``custom_id`` (latest bot message carrying it)."""
        return await self._use_component(
            custom_id,
            {"values": [str(v) for v in values]},
            f"a selection in {custom_id!r}",
            timeout,
        )

    async def submit(
        self,
        custom_id: str,
        fields: dict[str, str] | None = None,
        *,
        guild: int = 0,
        timeout: float = 10,
    ) -> list[RestCall]:
        """Submit the modal ``custom_id`` the bot opened, with field values by custom_id."""
        modal = self.state.opened_modals.get(custom_id)
        if modal is None:
            opened = ", ".join(self.state.opened_modals) or "none"
            raise StepFailed(f"the bot opened no modal {custom_id!r} (opened: {opened})")
        values = dict(fields or {})
        components, used = _fill_modal(list(modal.get("components") or []), values)
        unknown = set(values) - used
        if unknown:
            raise StepFailed(f"the modal {custom_id!r} has no field {', '.join(sorted(unknown))}")
        pending = self.state.new_interaction(MODAL_SUBMIT, self.state.guild(guild), custom_id)
        data: JSON = {"custom_id": custom_id, "components": components}
        return await self._interact(
            pending, data, what=f"the submission of {custom_id!r}", timeout=timeout
        )

    # -- raw gateway control -----------------------------------------------------

    async def dispatch(self, event: str, payload: JSON, *, shard: int = 0) -> None:
        """Send any gateway event (PRESENCE_UPDATE, TYPING_START, ...) to one shard."""
        if not self.gateway.dispatch(event, payload, shard=shard):
            raise StepFailed(f"shard {shard} is not connected")

    async def force_reconnect(
        self, shard: int = 0, kind: str = "resume", *, timeout: float = 15
    ) -> None:
        """Make a shard reconnect (``resume``: op 7, ``invalid_session``: op 9,
        ``close``: drop the socket) and wait until it is back."""
        before = len(self.gateway.ops)
        await self.gateway.force_reconnect(shard, kind)
        wanted = 2 if kind == "invalid_session" else 6  # IDENTIFY or RESUME
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            back = any(op.shard_id == shard and op.op == wanted for op in self.gateway.ops[before:])
            session = self.gateway.live.get(shard)
            if back and session is not None and session.connection is not None:
                return
            if loop.time() >= deadline:
                raise ReactionTimeout(
                    f"shard {shard} did not come back within {timeout:g}s after {kind}"
                )
            await asyncio.sleep(0.01)

    # -- scenarios -----------------------------------------------------------------

    async def run(self, scenario: Scenario, *, wait_ready_timeout: float = 30) -> ScenarioResult:
        """Run a scenario against the connected bot (waits for READY first)."""
        from discord_otel.simulator.runner import run_scenario

        return await run_scenario(self, scenario, wait_ready_timeout=wait_ready_timeout)


def _fill_modal(components: list[Any], values: dict[str, str]) -> tuple[list[JSON], set[str]]:
    """The modal-submit component tree for an opened modal, with the given values."""
    filled: list[JSON] = []
    used: set[str] = set()
    for component in components:
        if not isinstance(component, dict):
            continue
        kind = component.get("type")
        if kind == 1:
            inner, inner_used = _fill_modal(list(component.get("components") or []), values)
            filled.append({"type": 1, "components": inner})
            used |= inner_used
        elif kind == 18 and isinstance(component.get("component"), dict):
            inner, inner_used = _fill_modal([component["component"]], values)
            if inner:
                filled.append({"type": 18, "component": inner[0]})
            used |= inner_used
        elif "custom_id" in component:
            custom_id = str(component["custom_id"])
            used.add(custom_id)
            if kind == 4:
                filled.append(
                    {"type": 4, "custom_id": custom_id, "value": str(values.get(custom_id, ""))}
                )
            else:
                chosen = values.get(custom_id)
                filled.append(
                    {
                        "type": kind,
                        "custom_id": custom_id,
                        "values": [] if chosen is None else [str(chosen)],
                    }
                )
    return filled, used
