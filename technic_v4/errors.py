"""What the engine raises, so every caller (CLI, HTTP, stream) gives the same answer.

  ConfigError        the request is wrong: names the field, says why, lists the valid values
                     (HTTP 422; CLI `error:` line, exit 2)
  StaleDataError     the store or the models changed under a scan, twice in a row
                     (HTTP 503 + Retry-After; the orchestrator already retried once)
  UnknownSymbolError a well-formed symbol that is not in the universe (HTTP 404)
  UnknownScreenError a well-formed screen name with no saved screen or preset (HTTP 404; a
                     scan naming it is a plain ConfigError, 422, listing the valid names)
  ReadOnlyScreenError a change to a preset (HTTP 409)
  NotReadyError      the service is up but its Panel or models are not loaded yet (HTTP 503
                     + Retry-After)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class ConfigError(ValueError):
    """A scan request that cannot be run: `field`, the message, and `valid` values if known."""

    def __init__(self, field: str, message: str, valid: Sequence[str] | None = None,
                 details: Mapping[str, object] | None = None):
        super().__init__(message)
        self.field = field
        self.message = message
        self.valid = list(valid) if valid is not None else None
        self.details = dict(details or {})  # e.g. an expression's line, column, suggestions

    def __reduce__(self) -> tuple:
        """Rebuilt as it is (type, message, field, valid, details), whatever a subclass's
        __init__ takes: errors cross process boundaries (Ray Serve handles) intact."""
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "message": self.message, **self.details}
        if self.valid is not None:
            out["valid"] = self.valid
        return out


def _rebuild(cls: type[ConfigError], args: tuple, state: dict) -> ConfigError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class StaleDataError(RuntimeError):
    """The store or the models changed during a scan: its pieces come from different versions."""


class NotReadyError(RuntimeError):
    """The service is up but its Panel or models are not loaded yet."""


class UnknownSymbolError(LookupError):
    """A well-formed symbol that is not in the universe."""


class UnknownScreenError(ConfigError):
    """No saved screen or preset of this name (or no such version of it); `valid`: the names."""

    def __init__(self, message: str, valid: Sequence[str] | None = None):
        super().__init__("screen", message, valid)


class ReadOnlyScreenError(ConfigError):
    """A preset cannot be saved over or deleted."""

    def __init__(self, message: str):
        super().__init__("screen", message)
