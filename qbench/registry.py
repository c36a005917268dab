"""The registries of qbench's pluggable axes: model sources (models/base.py::SOURCES), recipe kinds
(quantize/base.py::RECIPES), power sources (collectors/power/base.py::POWER_SOURCES) and device
transports (devices/transports.py::TRANSPORTS).

Built-ins register exactly the way a third-party plugin would, and an unknown name lists the choices.
Runners are not a registry: runners/choice.py picks native or Python per device.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    def __init__(self, axis: str, name: str, choices: list[str]):
        self.axis, self.name, self.choices = axis, name, choices
        super().__init__(f"unknown {axis} {name!r}; choose one of: {', '.join(choices)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class Registry(Generic[T]):
    def __init__(self, axis: str):
        self.axis = axis
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.axis} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(self.axis, name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
