"""``Secret``: a value that must never reach a log, repr, exception or URL (SECURITY R49).

Code calls :meth:`Secret.reveal` at the single place the value is used (an HTTP header,
an encrypted column); everywhere else it prints as ``Secret('**********')``.
"""

from __future__ import annotations

__all__ = ["Secret"]


class Secret:
    """A masked string: client secrets, key passwords, access and refresh tokens."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value

    def reveal(self) -> str:
        """The real value; call only where it is sent or stored."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str:
        raise TypeError("a Secret cannot be pickled")
