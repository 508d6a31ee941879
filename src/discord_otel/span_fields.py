"""Which span classes' fields the export thread may read directly.

Every exported span is read field by field twice over (the secret scrubber, the
OTLP encoder), and ``ReadableSpan``'s public accessors build a new object per
read (a mapping proxy, a tuple). Where a class's accessors are the stock ones --
plain reads of the private fields -- those fields are read instead.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import Span as _SdkSpan

__all__ = ["DIRECT_TYPES", "reads_fields_directly"]

_ACCESSORS: Final = (
    "name",
    "kind",
    "parent",
    "start_time",
    "end_time",
    "attributes",
    "events",
    "links",
    "status",
    "resource",
    "instrumentation_scope",
    "dropped_attributes",
    "dropped_events",
    "dropped_links",
)
_CACHE_SIZE: Final = 64

DIRECT_TYPES: dict[type, bool] = {}
"""What :func:`reads_fields_directly` answered, per class (hot loops read it first)."""


def reads_fields_directly(cls: type) -> bool:
    """Whether ``cls``'s public accessors are the stock ``ReadableSpan`` ones, so
    that its ``_name``, ``_attributes``, ... can be read directly."""
    direct = DIRECT_TYPES.get(cls)
    if direct is None:
        direct = issubclass(cls, ReadableSpan) and all(
            _static_attribute(cls, name) is _static_attribute(ReadableSpan, name)
            for name in _ACCESSORS
        )
        getter = _static_attribute(cls, "get_span_context")
        direct = direct and (
            getter
            in (
                _static_attribute(ReadableSpan, "get_span_context"),
                _static_attribute(_SdkSpan, "get_span_context"),
            )
            # a getter that says it returns ``_context`` (recording.RecordingSpan's)
            or getattr(getter, "returns_context_field", False) is True
        )
        if len(DIRECT_TYPES) >= _CACHE_SIZE:
            DIRECT_TYPES.clear()
        DIRECT_TYPES[cls] = direct
    return direct


def _static_attribute(cls: type, name: str) -> object:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None
