"""Connection checks: can we reach the host, become root there, and trust its clock?
Every other check depends on `connection.facts`, so a host we cannot reach reports one error
and a column of "blocked", not twenty errors."""

from __future__ import annotations

from installer.checks import settings
from installer.checks.context import CheckContext
from installer.checks.model import Severity
from installer.checks.registry import Outcome, checker, fail, ok

check = checker("connection")


@check("connection.ssh", "SSH reachable and authenticated (or a local connection for localhost)", severity=Severity.ERROR)
def ssh(ctx: CheckContext) -> Outcome:
    st = ctx.state
    expected = "an authenticated session" if not st.target.local else "a local shell"
    if st.connect_error is not None:
        return fail(st.connect_error.message, expected, st.connect_error.fix)
    observed = f"{st.connection_description} in {st.connect_ms} ms"
    if st.host_key:
        observed += f"; host key {st.host_key}"
    return ok(observed, expected)


@check("connection.shell", "commands run on the host and answer", severity=Severity.ERROR, depends=("connection.ssh",))
def shell(ctx: CheckContext) -> Outcome:
    st = ctx.state
    expected = "`id` and `date` answer through the login shell"
    if st.probe is None:
        err = st.probe_error
        return fail(
            f"cannot run commands: {err.message if err else 'no answer'}",
            expected,
            (err.fix if err and err.fix else "check the user's login shell on the host"),
        )
    return ok(f"user {st.probe.user} (uid {st.probe.uid}), round trip {st.probe.round_trip * 1000:.0f} ms", expected)


@check("connection.sudo_available", "commands can run as root: root login, or sudo installed", severity=Severity.ERROR, depends=("connection.shell",))
def sudo_available(ctx: CheckContext) -> Outcome:
    st = ctx.state
    expected = "root login, or sudo installed"
    assert st.probe is not None
    if st.probe.is_root:
        return ok(f"logged in as {st.probe.user} (uid 0)", expected)
    if st.probe.sudo_path:
        return ok(f"{st.probe.user} (uid {st.probe.uid}) has {st.probe.sudo_path}", expected)
    return fail(
        f"{st.probe.user} (uid {st.probe.uid}) is not root and sudo is not installed",
        expected,
        "install sudo on the host and allow the user to run commands as root, or set ssh.user: root",
    )


@check("connection.sudo_allowed", "sudo lets the SSH user run commands as root", severity=Severity.ERROR, depends=("connection.sudo_available",))
def sudo_allowed(ctx: CheckContext) -> Outcome:
    st = ctx.state
    expected = "root, or sudo to root (with ssh.sudoPassword if it asks)"
    if st.root_error is not None:
        return fail(st.root_error.message, expected, st.root_error.fix)
    if not st.root_how:
        return fail("root was not obtained", expected, "see connection.sudo_available")
    return ok(st.root_how, expected)


@check("connection.clock", "the host's clock is within 10 minutes of the installer's", severity=Severity.ERROR, depends=("connection.shell",))
def clock(ctx: CheckContext) -> Outcome:
    probe = ctx.state.probe
    limit = settings.MAX_CLOCK_DRIFT_SECONDS
    expected = f"within ±{limit / 60:g} min of the installer"
    assert probe is not None
    drift = probe.clock_drift
    if drift is None:
        return fail("the host did not report its time (`date +%s.%N`)", expected, "install GNU coreutils `date`")
    observed = f"{drift:+.1f} s against the installer (±{probe.round_trip / 2:.2f} s)"
    if abs(drift) < limit:
        return ok(observed, expected)
    return fail(
        observed,
        expected,
        "synchronise the clocks: enable NTP on the host and the installer (chrony, systemd-timesyncd or ntpd)",
    )


@check(
    "connection.clock_skew",
    f"the host's clock is within {settings.MAX_NODE_CLOCK_SKEW_SECONDS:g} s of the master's",
    severity=Severity.ERROR,
    depends=("connection.shell",),
    scope="cluster",
)
def clock_skew(ctx: CheckContext) -> Outcome:
    """Hosts of one platform judge each other's timestamps (Node Leases, certificates' validity, VM
    events): a worker's clock must agree with the master's far more closely than with the installer's."""
    limit = settings.MAX_NODE_CLOCK_SKEW_SECONDS
    expected = f"within ±{limit:g} s of the master's clock"
    masters = [p for p in ctx.peers if p.host.role == "master" and p.probe is not None and p.probe.clock_drift is not None]
    mine = ctx.state.probe.clock_drift if ctx.state.probe is not None else None
    if ctx.role == "master" or not masters or mine is None:
        return ok("the master's clock is the reference" if ctx.role == "master" else "no master clock to compare with",
                  expected)
    master = masters[0]
    assert master.probe is not None and master.probe.clock_drift is not None
    skew = mine - master.probe.clock_drift
    uncertainty = (ctx.state.probe.round_trip + master.probe.round_trip) / 2 if ctx.state.probe else 0.0
    observed = f"{skew:+.1f} s against master {master.target.name} (±{uncertainty:.2f} s)"
    if abs(skew) <= limit + uncertainty:
        return ok(observed, expected)
    return fail(observed, expected, "synchronise the clocks of all hosts: enable NTP on each (chrony, "
                                    "systemd-timesyncd or ntpd) against the same servers")


@check("connection.facts", "the host's facts were gathered (one read-only script run as root)", severity=Severity.ERROR, depends=("connection.sudo_allowed",))
def facts(ctx: CheckContext) -> Outcome:
    st = ctx.state
    expected = "the fact script runs to its end"
    if st.facts is None:
        return fail(st.facts_error or "no facts", expected, "run the command with -v and check the host's shell and coreutils")
    root = st.facts.host_root
    where = "" if root == "/" else f", host files under {root}"
    return ok(f"gathered in {st.facts_ms} ms{where}", expected)


CHECKS = [ssh, shell, sudo_available, sudo_allowed, clock, clock_skew, facts]
