"""Every span, attribute, event and metric name discord-otel emits: the one place
they are written. The contract they follow is docs/telemetry.md (TELEMETRY.md).

Names follow the OpenTelemetry semantic conventions where one exists (HTTP
client, DB client, ``error.type``) and ``discord.*`` where none does.
"""

from __future__ import annotations

from typing import Final

# --- Resource -----------------------------------------------------------------
DISTRO_NAME: Final = "discord-otel"
DEFAULT_SERVICE_NAME: Final = "discord-bot"

# --- Instrumentation scope ----------------------------------------------------
SCOPE_NAME: Final = "discord_otel"

# --- Span names (format strings) ----------------------------------------------
SPAN_GATEWAY: Final = "gateway {event}"
SPAN_LISTENER: Final = "listener {name}"
SPAN_COMMAND: Final = "command {name}"
SPAN_COMPONENT: Final = "component {name}"
SPAN_MODAL: Final = "modal {name}"
SPAN_AUTOCOMPLETE: Final = "autocomplete {name}"
SPAN_REST: Final = "{method} {route}"
SPAN_TASK: Final = "task {name}"
SPAN_STARTUP: Final = "startup"
SPAN_EXTENSION_LOAD: Final = "load_extension {name}"
SPAN_COG_LOAD: Final = "add_cog {name}"
SPAN_GATEWAY_CONNECT: Final = "gateway connect"

UNKNOWN_COMMAND: Final = "(unknown)"
"""Stands for any command name that does not match a registered command."""

# --- Span events --------------------------------------------------------------
EVENT_RATELIMITED: Final = "discord.ratelimited"
EVENT_INTERACTION_ACK: Final = "discord.interaction.ack"
EVENT_EXCEPTION: Final = "exception"

# --- Attributes: discord.* ----------------------------------------------------
GATEWAY_EVENT: Final = "discord.gateway.event"
SHARD_ID: Final = "discord.shard.id"
GUILD_ID: Final = "discord.guild.id"
CHANNEL_ID: Final = "discord.channel.id"
USER_ID: Final = "discord.user.id"
MESSAGE_CONTENT: Final = "discord.message.content"
LISTENER_NAME: Final = "discord.listener.name"
COMMAND_NAME: Final = "discord.command.name"
COMMAND_TYPE: Final = "discord.command.type"
COMMAND_OUTCOME: Final = "discord.command.outcome"
COMMAND_OPTIONS: Final = "discord.command.options"
COG: Final = "discord.cog"
COMPONENT_NAME: Final = "discord.component.name"
COMPONENT_TYPE: Final = "discord.component.type"
COMPONENT_CUSTOM_ID: Final = "discord.component.custom_id"
INTERACTION_TYPE: Final = "discord.interaction.type"
TASK_NAME: Final = "discord.task.name"
RECONNECT_KIND: Final = "discord.gateway.reconnect.kind"
RATELIMIT_SCOPE: Final = "discord.ratelimit.scope"
RATELIMIT_RETRY_AFTER: Final = "discord.ratelimit.retry_after"
INTERACTION_ACK_DURATION: Final = "discord.interaction.ack.duration"
"""Seconds from gateway receipt to the initial response (on the ack span event)."""
EXTENSION_NAME: Final = "discord.extension.name"

# --- Attributes: semantic conventions -----------------------------------------
ERROR_TYPE: Final = "error.type"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_TEMPLATE: Final = "url.template"
SERVER_ADDRESS: Final = "server.address"
DB_SYSTEM_NAME: Final = "db.system.name"
DB_OPERATION_NAME: Final = "db.operation.name"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"

# --- Attribute values ---------------------------------------------------------
OUTCOME_SUCCESS: Final = "success"
OUTCOME_ERROR: Final = "error"

COMMAND_TYPE_PREFIX: Final = "prefix"
COMMAND_TYPE_SLASH: Final = "slash"
COMMAND_TYPE_HYBRID: Final = "hybrid"
COMMAND_TYPE_USER: Final = "user"
COMMAND_TYPE_MESSAGE: Final = "message"

COMPONENT_TYPE_MODAL: Final = "modal"
"""``discord.component.type`` of a modal submit."""

RECONNECT_RESUME: Final = "resume"
RECONNECT_IDENTIFY: Final = "identify"

RATELIMIT_BUCKET: Final = "bucket"
RATELIMIT_GLOBAL: Final = "global"
RATELIMIT_SHARED: Final = "shared"

ERROR_TYPE_OTHER: Final = "_OTHER"

# --- Metrics ------------------------------------------------------------------
METRIC_GATEWAY_EVENTS: Final = "discord.gateway.events"
METRIC_GATEWAY_LATENCY: Final = "discord.gateway.latency"
METRIC_SHARD_CONNECTED: Final = "discord.shard.connected"
METRIC_GATEWAY_RECONNECTS: Final = "discord.gateway.reconnects"
METRIC_LISTENER_DURATION: Final = "discord.listener.duration"
METRIC_COMMAND_DURATION: Final = "discord.command.duration"
METRIC_COMMAND_ACTIVE: Final = "discord.command.active"
METRIC_COMPONENT_DURATION: Final = "discord.component.duration"
METRIC_INTERACTION_ACK_DURATION: Final = "discord.interaction.ack.duration"
METRIC_REST_REQUEST_DURATION: Final = "discord.rest.request.duration"
METRIC_REST_RATELIMITS: Final = "discord.rest.ratelimits"
METRIC_REST_RATELIMIT_REMAINING: Final = "discord.rest.ratelimit.remaining"
METRIC_TASK_DURATION: Final = "discord.task.duration"
METRIC_TASK_LAST_SUCCESS: Final = "discord.task.last_success"
METRIC_GUILDS: Final = "discord.guilds"
METRIC_USERS: Final = "discord.users"
METRIC_EVENT_LOOP_LAG: Final = "asyncio.event_loop.lag"
METRIC_DB_OPERATION_DURATION: Final = "db.client.operation.duration"

# Explicit histogram bucket bounds, in seconds, suited to what each measures.
BUCKETS_COMMAND: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BUCKETS_LISTENER: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    5.0,
)
BUCKETS_INTERACTION_ACK: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0)
BUCKETS_REST: Final = (0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
BUCKETS_TASK: Final = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
BUCKETS_DB: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
