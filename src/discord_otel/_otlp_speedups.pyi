"""Types of the compiled half of :mod:`discord_otel.otlp_encoding` (_otlp_speedups.c)."""

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

def encode_pieces(
    spans: Sequence[Any],
    scrub_module: ModuleType,
    generation: int,
    direct_types: dict[type, bool],
    names: dict[str, bytes],
    key_values: dict[tuple[Any, type, Any], bytes],
    span_context_type: type,
    bounded_attributes_type: type,
    bounded_list_type: type,
    event_type: type,
    status_type: type,
    kinds: tuple[Any, ...],
    kind_fields: tuple[bytes, ...],
    status_codes: tuple[Any, ...],
    status_fields: tuple[bytes, ...],
    name_field: Callable[[Any], bytes],
    cached_key_value: Callable[[Any, type, Any], bytes | None],
    key_value: Callable[[Any, Any], bytes | None],
    trace_state_field: Callable[[Any], bytes],
    reads_fields_directly: Callable[[type], bool],
) -> list[bytes | None]: ...

class QueueEmit:
    """A batch processor's ``emit`` without a system call per item."""

    def __init__(
        self, batch: Any, queue: Any, max_queue_size: int, max_export_batch_size: int
    ) -> None: ...
    def __call__(self, item: Any) -> None: ...
