"""Unit tests check schemas through their compiled form whenever it compiles: the compiler
(`controlplane.apiserver.schema`, a background thread in the server) runs inline here, so every
validation test meets the compiled check first and jsonschema's error search behind it, as a
warmed-up server does."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from controlplane.apiserver import schema


class _Inline:
    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - kept in the future, as an executor does
            done.set_exception(exc)
        return done


@pytest.fixture(autouse=True)
def _schemas_compiled_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "_COMPILER", _Inline())
