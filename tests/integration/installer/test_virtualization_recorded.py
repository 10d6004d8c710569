"""The virtualization checks judged on recorded host files from real machines (see
tests/fixtures/hosts/README.md), each placed where a test host reads it (DVP_HOST_ROOT set by
its sshd), over a real SSH session."""

from __future__ import annotations

import pytest

from installer.checks.runner import run_preflight
from tests.integration.installer.conftest import RECORDED, Lab, build_config, host

pytestmark = pytest.mark.integration

EMULATION = "no hardware virtualization; VMs will run under software emulation"

# case -> check -> (verdict in production, verdict in evaluation, text that must be in observed)
EXPECTED: dict[str, dict[str, tuple[str, str, str]]] = {
    "intel-nested": {
        "virt.cpu_flags": ("passed", "passed", "vmx (GenuineIntel Intel(R) Core(TM) i5-8250U"),
        "virt.kvm_module": ("passed", "passed", "kvm_intel loaded"),
        "virt.dev_kvm": ("passed", "passed", "character device, read-write"),
        "virt.nested": ("passed", "passed", "kvm_intel nested=Y"),
    },
    "amd-no-nested": {
        "virt.cpu_flags": ("passed", "passed", "svm (AuthenticAMD AMD FX(tm)-6300"),
        "virt.kvm_module": ("passed", "passed", "kvm_amd loaded"),
        "virt.dev_kvm": ("passed", "passed", "character device, read-write"),
        "virt.nested": ("warning", "warning", "kvm_amd nested=0"),
    },
    "vm-no-flags": {
        "virt.cpu_flags": ("error", "warning", "the host is itself a VM (CPU flag 'hypervisor')"),
        "virt.kvm_module": ("blocked", "blocked", ""),
        "virt.dev_kvm": ("blocked", "blocked", ""),
        "virt.nested": ("blocked", "blocked", ""),
    },
    "pvm-this-machine": {
        "virt.cpu_flags": ("error", "warning", "/dev/kvm is provided by kvm_pvm"),
        "virt.kvm_module": ("blocked", "blocked", ""),
        "virt.dev_kvm": ("blocked", "blocked", ""),
        "virt.nested": ("blocked", "blocked", ""),
    },
}


@pytest.fixture(scope="module")
def reports(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = {}
    workdir = tmp_path_factory.mktemp("recorded")
    for profile in ("production", "evaluation"):
        config = build_config(lab, workdir, [host(lab[case]) for case in RECORDED], profile=profile)
        out[profile] = run_preflight(config).report
    return out


@pytest.mark.parametrize("case", RECORDED)
@pytest.mark.parametrize("profile", ["production", "evaluation"])
def test_recorded_case_gives_expected_verdict(reports: dict, lab: Lab, case: str, profile: str) -> None:
    report = reports[profile].host(lab[case].name.lower())
    assert report.result("connection.facts").verdict == "passed", report.result("connection.facts")
    for name, (prod, evaluation, text) in EXPECTED[case].items():
        result = report.result(name)
        want = prod if profile == "production" else evaluation
        assert result.verdict == want, (case, profile, result)
        assert text in result.observed, (case, result.observed)


@pytest.mark.parametrize("case", ["vm-no-flags", "pvm-this-machine"])
def test_no_flags_reports_software_emulation_truthfully(reports: dict, lab: Lab, case: str) -> None:
    for profile in ("production", "evaluation"):
        result = reports[profile].host(lab[case].name.lower()).result("virt.cpu_flags")
        assert result.message == EMULATION
        assert "no vmx/svm in the CPU flags" in result.observed


def test_pvm_facts_match_the_recording(reports: dict, lab: Lab) -> None:
    """The facts came from the recorded files, not from the machine the test runs on."""
    report = reports["production"].host("pvm")
    assert "AMD EPYC" in report.result("virt.cpu_flags").observed
    intel = reports["production"].host("intel")
    assert intel.result("system.kernel_version").observed == "Linux 5.0.9-2-MANJARO"
    assert intel.result("system.kernel_version").verdict == "error"  # 5.0 < 5.8


def test_vhost_net_missing_on_this_machine_is_a_warning(reports: dict) -> None:
    pvm = reports["evaluation"].host("pvm")
    assert pvm.result("system.module.vhost_net").verdict == "warning"
    assert "CONFIG_VHOST_NET" in pvm.result("system.module.vhost_net").observed
    assert pvm.result("system.module.tun").observed == "built-in"
    assert pvm.result("virt.dev_vhost_net").verdict == "blocked"
