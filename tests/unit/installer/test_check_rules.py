"""Rules every check shares (blocked, skipped, crashes) and the judgements of individual
checks on synthetic facts, where a live host can't be made to show them (clock drift, kernel
versions across hosts, nested virtualization inside a VM)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from installer.checks.catalog import CATALOG, by_name
from installer.checks.context import CheckContext, HostState, Probe
from installer.checks.facts import Cpu, HostFacts, Modules
from installer.checks.model import CheckResult, Severity, Status
from installer.checks.registry import CheckSpec, evaluate, fail, ok, validate_catalog
from installer.config import InstallConfig
from installer.ssh.target import targets_from_config


def config(profile: str = "production", n: int = 1) -> InstallConfig:
    return InstallConfig.model_validate({
        "apiVersion": "dvp.deckhouse.io/v1alpha1", "kind": "InstallConfig",
        "hosts": [{"address": f"10.0.0.{i + 1}", "role": "master" if i == 0 else "worker", "name": f"h{i}"} for i in range(n)],
        "virtualization": {"virtualMachineCIDRs": ["10.66.10.0/24"]},
        "checks": {"profile": profile},
    })


def state(cfg: InstallConfig, facts: HostFacts | None, i: int = 0, *, drift: float = 0.0) -> HostState:
    st = HostState(target=targets_from_config(cfg)[i])
    st.probe = Probe(uid=0, user="root", sudo_path="", remote_time=1000.0 + drift, local_time=1000.0, round_trip=0.01)
    st.root_how = "logged in as root"
    st.facts = facts
    return st


def judge(name: str, cfg: InstallConfig, st: HostState, peers: list[HostState] | None = None) -> CheckResult:
    spec = by_name(name)
    done = {dep: CheckResult(dep, "x", "", Severity.ERROR, Status.PASSED) for dep in spec.depends}
    return evaluate([spec], CheckContext(cfg, st, peers or [st]), skip=set(), done=done)[0]


def test_catalog_is_well_formed() -> None:
    validate_catalog(CATALOG)
    a = CheckSpec("a", "g", "", Severity.ERROR, lambda ctx: ok("", ""))
    b = CheckSpec("b", "g", "", Severity.ERROR, lambda ctx: ok("", ""), depends=("a",))
    with pytest.raises(ValueError, match="depends on a"):
        validate_catalog([b, a])
    with pytest.raises(ValueError, match="duplicate"):
        validate_catalog([a, a])


def test_blocked_skipped_and_crashing_checks() -> None:
    def boom(ctx: CheckContext) -> object:
        raise RuntimeError("surprise")

    specs = [
        CheckSpec("root", "g", "", Severity.ERROR, lambda ctx: fail("bad", "good", "fix it")),
        CheckSpec("child", "g", "", Severity.ERROR, lambda ctx: ok("", ""), depends=("root",)),
        CheckSpec("grandchild", "g", "", Severity.ERROR, lambda ctx: ok("", ""), depends=("child",)),
        CheckSpec("skipped", "g", "", Severity.WARNING, lambda ctx: ok("", "")),
        CheckSpec("after-skip", "g", "", Severity.ERROR, lambda ctx: ok("", ""), depends=("skipped",)),
        CheckSpec("crash", "g", "", Severity.ERROR, boom),  # type: ignore[arg-type]
    ]
    cfg = config()
    results = evaluate(specs, CheckContext(cfg, state(cfg, HostFacts())), skip={"skipped"}, done={})
    got = {r.name: (r.verdict, r.blocked_by) for r in results}
    assert got == {
        "root": ("error", None),
        "child": ("blocked", "root"),
        "grandchild": ("blocked", "child"),
        "skipped": ("skipped", None),
        "after-skip": ("blocked", "skipped"),
        "crash": ("error", None),
    }
    crash = results[-1]
    assert crash.observed == "the check could not be evaluated: RuntimeError: surprise"
    assert results[1].message == "not run: root error"


@pytest.mark.parametrize(("drift", "verdict"), [(0.0, "passed"), (599.0, "passed"), (-601.0, "error"), (3600.0, "error")])
def test_clock_drift(drift: float, verdict: str) -> None:
    cfg = config()
    result = judge("connection.clock", cfg, state(cfg, HostFacts(), drift=drift))
    assert result.verdict == verdict
    assert result.observed.startswith(f"{drift:+.1f} s against the installer")


@pytest.mark.parametrize(("worker_drift", "verdict"), [(30.0, "passed"), (-59.0, "passed"), (75.0, "error"),
                                                       (600.0, "error")])
def test_clock_skew_between_worker_and_master(worker_drift: float, verdict: str) -> None:
    cfg = config(n=2)
    peers = [state(cfg, HostFacts(), 0, drift=5.0), state(cfg, HostFacts(), 1, drift=5.0 + worker_drift)]
    worker = judge("connection.clock_skew", cfg, peers[1], peers)
    assert worker.verdict == verdict
    assert worker.observed.startswith(f"{worker_drift:+.1f} s against master h0")
    assert judge("connection.clock_skew", cfg, peers[0], peers).verdict == "passed"


def test_kernel_lines_must_match_across_hosts() -> None:
    cfg = config(n=3)
    peers = [state(cfg, HostFacts(kernel=k), i) for i, k in enumerate(["6.1.0-18-amd64", "6.1.0-9-amd64", "5.15.0-91-generic"])]
    results = [judge("system.kernel_migration", cfg, p, peers) for p in peers]
    assert {r.verdict for r in results} == {"warning"}
    assert "hosts differ: 5.15 on h2; 6.1 on h0, h1" in results[0].observed
    same = [state(cfg, HostFacts(kernel="6.1.0-18-amd64"), i) for i in range(3)]
    assert judge("system.kernel_migration", cfg, same[0], same).verdict == "passed"
    old = [state(cfg, HostFacts(kernel="5.10.0-9-amd64"), i) for i in range(3)]
    assert judge("system.kernel_migration", cfg, old[0], old).verdict == "warning"


VM_WITH_VMX = HostFacts(
    cpu=Cpu(count=4, vendor="GenuineIntel", model="Intel Xeon (Cascadelake)", flags=frozenset({"vmx", "hypervisor"})),
    modules=Modules(proc_modules=True, loaded=frozenset({"kvm", "kvm_intel"})),
    nested=(("kvm_intel", "N"),),
)


@pytest.mark.parametrize(
    ("facts", "profile", "verdict"),
    [
        (VM_WITH_VMX, "production", "error"),  # required when the host is itself a VM
        (VM_WITH_VMX, "evaluation", "warning"),
        (replace(VM_WITH_VMX, cpu=replace(VM_WITH_VMX.cpu, flags=frozenset({"vmx"}))), "production", "warning"),
        (replace(VM_WITH_VMX, nested=(("kvm_intel", "Y"),)), "production", "passed"),
    ],
    ids=["vm-production", "vm-evaluation", "bare-metal", "vm-nested-on"],
)
def test_nested_required_inside_a_vm(facts: HostFacts, profile: str, verdict: str) -> None:
    cfg = config(profile)
    result = judge("virt.nested", cfg, state(cfg, facts))
    assert result.verdict == verdict
    if verdict != "passed":
        assert "options kvm_intel nested=1" in result.fix


@pytest.mark.parametrize(
    ("profile", "role", "cpus", "mem_gib", "verdicts"),
    [
        ("production", "master", 4, 8, ("passed", "passed")),
        ("production", "master", 2, 8, ("error", "passed")),
        ("production", "master", 8, 4, ("passed", "error")),
        ("evaluation", "master", 2, 4, ("passed", "passed")),
        ("evaluation", "worker", 1, 2, ("passed", "passed")),
    ],
)
def test_resources_by_role_and_profile(profile: str, role: str, cpus: int, mem_gib: int, verdicts: tuple[str, str]) -> None:
    cfg = config(profile, n=2)
    facts = HostFacts(cpu=Cpu(count=cpus), mem_total_bytes=int(mem_gib * 1024**3 * 0.97))
    st = state(cfg, facts, 0 if role == "master" else 1)
    assert (judge("resources.cpu", cfg, st).verdict, judge("resources.memory", cfg, st).verdict) == verdicts


def test_init_system_by_target() -> None:
    cfg = config()
    facts = HostFacts(pid1="process_api", commands=(("start-stop-daemon", "/sbin/start-stop-daemon"),))
    assert judge("system.init", cfg, state(cfg, facts)).verdict == "passed"
    dkp = cfg.model_copy(update={"target": "dkp"})
    result = judge("system.init", dkp, state(dkp, facts))
    assert result.verdict == "error" and result.observed == "PID 1 is process_api, not systemd"
    assert judge("system.init", dkp, state(dkp, replace(facts, systemd_booted=True))).verdict == "passed"
