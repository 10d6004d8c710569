"""The check contract: a `CheckSpec` names a check, says what it verifies, how severe a
failure is, which checks must pass first, and holds the function that judges a host.

`evaluate()` applies the rules every check shares: a check skipped by name reports
`skipped`; a check whose dependency did not pass reports `blocked` (naming the dependency)
instead of a second error; a check that crashes reports a failure instead of stopping the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from installer.checks.model import CheckResult, Severity, Status

if TYPE_CHECKING:
    from installer.checks.context import CheckContext


@dataclass(frozen=True)
class Outcome:
    """What a check function returns: pass or fail, with what it saw and what it wanted."""

    passed: bool
    observed: str
    expected: str
    fix: str = ""
    message: str = ""


def ok(observed: str, expected: str, *, message: str = "") -> Outcome:
    return Outcome(True, observed, expected, "", message)


def fail(observed: str, expected: str, fix: str, *, message: str = "") -> Outcome:
    return Outcome(False, observed, expected, fix, message)


SeverityRule = Severity | Callable[["CheckContext"], Severity]
Scope = Literal["host", "cluster"]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    group: str
    description: str
    severity: SeverityRule
    run: Callable[[CheckContext], Outcome]
    depends: tuple[str, ...] = ()
    scope: Scope = "host"  # "cluster": judged after every host's facts are in

    def severity_for(self, ctx: CheckContext | None) -> Severity:
        if isinstance(self.severity, Severity):
            return self.severity
        if ctx is None or ctx.state.facts is None:
            return Severity.ERROR
        return self.severity(ctx)

    def result(self, status: Status, ctx: CheckContext | None, **fields: object) -> CheckResult:
        return CheckResult(
            name=self.name,
            group=self.group,
            description=self.description,
            severity=self.severity_for(ctx),
            status=status,
            **fields,  # type: ignore[arg-type]
        )


def checker(group: str) -> Callable[..., Callable[[Callable[[CheckContext], Outcome]], CheckSpec]]:
    """A decorator factory for one group's checks:

        check = checker("virtualization")

        @check("virt.dev_kvm", "…", severity=Severity.ERROR, depends=("virt.kvm_module",))
        def dev_kvm(ctx): ...
    """

    def check(
        name: str,
        description: str,
        *,
        severity: SeverityRule,
        depends: Sequence[str] = (),
        scope: Scope = "host",
    ) -> Callable[[Callable[[CheckContext], Outcome]], CheckSpec]:
        def wrap(fn: Callable[[CheckContext], Outcome]) -> CheckSpec:
            return CheckSpec(name, group, description, severity, fn, tuple(depends), scope)

        return wrap

    return check


def by_profile(production: Severity, evaluation: Severity) -> Callable[[CheckContext], Severity]:
    """Severity that depends on `checks.profile`."""

    def rule(ctx: CheckContext) -> Severity:
        return production if ctx.profile == "production" else evaluation

    return rule


def evaluate(
    specs: Iterable[CheckSpec],
    ctx: CheckContext,
    *,
    skip: set[str],
    done: dict[str, CheckResult],
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Judge `specs` in order on one host; `done` holds earlier results (dependencies)."""
    out = []
    for spec in specs:
        if spec.name in skip:
            res = spec.result(Status.SKIPPED, None, message="skipped by name")
        else:
            blocker = next((d for d in spec.depends if done[d].status is not Status.PASSED), None)
            if blocker is not None:
                dep = done[blocker]
                res = spec.result(
                    Status.BLOCKED, None, blocked_by=blocker, message=f"not run: {blocker} {dep.verdict}"
                )
            else:
                res = _run(spec, ctx)
        done[spec.name] = res
        out.append(res)
        if on_result is not None:
            on_result(res)
    return out


def _run(spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    started = time.monotonic()
    try:
        outcome = spec.run(ctx)
    except Exception as exc:  # a bug or facts we did not foresee: report, don't stop the run
        outcome = fail(
            f"the check could not be evaluated: {type(exc).__name__}: {exc}",
            "a verdict",
            "report this as a bug in dvp, with the host's OS and kernel",
        )
    return spec.result(
        Status.PASSED if outcome.passed else Status.FAILED,
        ctx,
        observed=outcome.observed,
        expected=outcome.expected,
        fix="" if outcome.passed else outcome.fix,
        message=outcome.message,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def validate_catalog(specs: Sequence[CheckSpec]) -> None:
    """Names unique; every dependency exists and comes earlier (so one pass suffices)."""
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"duplicate check name {spec.name}")
        for dep in spec.depends:
            if dep not in seen:
                raise ValueError(f"check {spec.name} depends on {dep}, which is not defined before it")
        seen.add(spec.name)
