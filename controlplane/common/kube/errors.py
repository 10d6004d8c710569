"""What happens next after a failed reconcile, decided in one place.

- a 409 Conflict (someone wrote first): requeue almost at once, nothing is wrong;
- a temporary error — the API answered 429 Too Many Requests or a 5xx, a request timed out or
  the connection was refused/reset, or a handler raised `TemporaryError` — retry after the
  delay the server asked for (`Retry-After`, `details.retryAfterSeconds`) or the error's own;
- anything else: retry with the key's exponential backoff (`RuntimeSettings.retry_*`).

Reconcilers join the errors of their handlers into one `ExceptionGroup`; its members are
classified together (all conflicts: a conflict; the longest delay asked for wins).
There is no "permanent" error: an object whose spec is wrong says so in a condition and is
reconciled again when it changes, with backoff meanwhile.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import urllib3

from controlplane.common.kube.client import KubeError


class TemporaryError(Exception):
    """A failure expected to clear on its own: retry after `delay` seconds."""

    def __init__(self, message: str, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


_NETWORK_ERRORS = (TimeoutError, ConnectionError, socket.timeout, urllib3.exceptions.HTTPError)


def leaves(exc: BaseException) -> list[BaseException]:
    """The individual errors of a (possibly nested) exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaves(sub)]
    return [exc]


def is_temporary(exc: BaseException) -> bool:
    if isinstance(exc, TemporaryError):
        return True
    if isinstance(exc, KubeError):
        return exc.status == 429 or exc.status >= 500 or exc.status == 0
    return isinstance(exc, _NETWORK_ERRORS)


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, KubeError) and exc.conflict


@dataclass(frozen=True)
class Retry:
    conflict: bool = False
    """Every error was a lost optimistic-concurrency race."""
    temporary: bool = False
    """Every error is expected to clear on its own."""
    after: float | None = None
    """The delay the errors asked for (None: the key's backoff decides)."""


def classify(exc: BaseException) -> Retry:
    errors = leaves(exc)
    if all(is_conflict(e) for e in errors):
        return Retry(conflict=True)
    asked = [d for d in (retry_after(e) for e in errors) if d is not None]
    return Retry(temporary=all(is_temporary(e) or is_conflict(e) for e in errors),
                 after=max(asked) if asked else None)


def retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, TemporaryError):
        return exc.delay
    if isinstance(exc, KubeError):
        return exc.retry_after
    return None


def describe(exc: BaseException) -> str:
    """One line for a condition message: what failed and what the user can do about it."""
    if isinstance(exc, KubeError) and exc.status == 429:
        return f"the API server is busy ({exc}); retrying on its own, nothing to do unless this persists"
    if isinstance(exc, KubeError) and exc.status >= 500:
        return f"the API server failed ({exc}); retrying on its own — if this persists, check the server's log"
    if isinstance(exc, KubeError) and exc.status == 403:
        return f"the controllers may not do this ({exc}); grant the controllers' identity this verb in its RBAC role"
    if isinstance(exc, _NETWORK_ERRORS) or (isinstance(exc, KubeError) and exc.status == 0):
        return f"the API server is unreachable ({exc}); retrying on its own — check that it runs"
    if isinstance(exc, TemporaryError):
        return f"{exc}; retrying in {exc.delay:g}s"
    return f"{exc or type(exc).__name__}; retrying with backoff — if this persists, check the controller's log"
