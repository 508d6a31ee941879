"""Replace attributes and put back exactly what was there.

Every hook of the instrumentation is installed through :class:`Patcher`, which
remembers the object found in the owner's own ``__dict__`` (the raw function,
``classmethod`` or absent marker), so ``uninstrument()`` restores the very same
objects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import wrapt

_ABSENT = object()

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


class Patcher:
    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, wrapper: Wrapper) -> None:
        """Wrap ``owner.name`` with a ``wrapt`` wrapper ``(wrapped, instance, args, kwargs)``."""
        self._saved.append((owner, name, vars(owner).get(name, _ABSENT)))
        wrapt.wrap_function_wrapper(owner, name, wrapper)

    def replace(self, owner: Any, name: str, value: Any) -> None:
        """Set ``owner.name = value`` (a module global or a plain function)."""
        self._saved.append((owner, name, vars(owner).get(name, _ABSENT)))
        setattr(owner, name, value)

    def restore(self) -> None:
        while self._saved:
            owner, name, raw = self._saved.pop()
            if raw is _ABSENT:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
            else:
                setattr(owner, name, raw)

    def __len__(self) -> int:
        return len(self._saved)
