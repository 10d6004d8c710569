"""Secrets in the install config: never inline, always a reference to a file or an environment
variable, resolved only when a connection needs them.

`SecretRef` is what the YAML holds (`{fromFile: PATH}` or `{fromEnv: NAME}`); `Secret` is the
resolved value, whose `str()`/`repr()` is `***` so that it cannot leak into logs, error
messages or tracebacks by accident. Call `reveal()` at the one place that hands it to paramiko
or sudo.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from installer.config.naming import config_alias

MASK = "***"


class Secret:
    """A resolved secret value; prints as `***`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class SecretError(Exception):
    """A secret reference that cannot be resolved; the message names the file or variable only."""


class SecretRef(BaseModel):
    """Where a secret is read from: exactly one of `fromFile` or `fromEnv`."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=config_alias, use_attribute_docstrings=True
    )

    from_file: Path | None = None
    """File whose content (without the trailing newline) is the secret; `~` is expanded."""

    from_env: str | None = None
    """Name of the environment variable holding the secret."""

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            # Never echo the value: it is most likely the secret itself.
            raise PydanticCustomError(
                "inline_secret",
                "inline secrets are not accepted; use {fromFile: PATH} or {fromEnv: NAME}",
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.from_file is None) == (self.from_env is None):
            raise PydanticCustomError("secret_source", "set exactly one of fromFile or fromEnv")
        return self

    def describe(self) -> str:
        """Where the secret comes from, safe to show."""
        if self.from_env is not None:
            return f"environment variable {self.from_env}"
        return f"file {self.from_file}"

    def resolve(self, *, environ: dict[str, str] | None = None) -> Secret:
        env = os.environ if environ is None else environ
        if self.from_env is not None:
            value = env.get(self.from_env)
            if value is None:
                raise SecretError(f"environment variable {self.from_env} is not set")
            return Secret(value)
        assert self.from_file is not None
        path = self.from_file.expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SecretError(f"file {path} does not exist") from None
        except OSError as exc:
            raise SecretError(f"file {path} cannot be read: {exc.strerror}") from None
        return Secret(text[:-1] if text.endswith("\n") else text)
