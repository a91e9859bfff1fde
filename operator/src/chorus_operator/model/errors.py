"""The model layer's domain errors: what a spec or its dependencies lack, as a condition.

Only the handler layer turns them into kopf errors (``PermanentError`` for
:class:`SpecInvalid`, ``TemporaryError`` for :class:`DependencyNotReady`); the model never
imports kopf.
"""

from __future__ import annotations


class ModelError(Exception):
    """A reason the desired state cannot be built; carries the status condition to report.

    ``condition_type`` is the condition it sets to False (``ToolsResolved``, ``StreamsReady``,
    ...), ``reason`` a CamelCase word a program matches on (``ToolNotFound``), ``message`` the
    sentence for people, naming the object and the field.
    """

    def __init__(self, condition_type: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.condition_type = condition_type
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.condition_type!r}, {self.reason!r}, {self.message!r})"


class SpecInvalid(ModelError):
    """The spec cannot work as written: retrying does not help until it is edited."""


class DependencyNotReady(ModelError):
    """Something the spec refers to is missing or not ready yet: retry with backoff."""
