"""The hypervisor decision from recorded host files (tests/unit/nodehandler/hosts/<case>/, one
tree per kind of host: proc/cpuinfo, proc/meminfo, sys/module/*, dev/kvm; each has a README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.api.internal import DomainType, KVMReason
from controlplane.nodehandler.hypervisor import (
    KVMUnavailable,
    _kvm_device,
    decide,
    decide_required,
    gather_facts,
)

HOSTS = Path(__file__).parent / "hosts"

# case, domain type, reason, nested, vendor, words the message must contain
CASES = [
    ("intel-nested", DomainType.KVM, KVMReason.HARDWARE_VIRTUALIZATION, True, "Intel", ["vmx", "kvm_intel", "enabled"]),
    ("amd-no-nested", DomainType.KVM, KVMReason.HARDWARE_VIRTUALIZATION, False, "AMD", ["svm", "kvm_amd", "disabled"]),
    ("vm-nested-disabled", DomainType.QEMU, KVMReason.NO_CPU_FLAGS, None, "Intel",
     ["no vmx or svm", "virtual machine", "nested virtualization on the outer hypervisor"]),
    ("bios-disabled", DomainType.QEMU, KVMReason.NO_CPU_FLAGS, None, "AMD", ["no vmx or svm", "firmware"]),
    ("no-device", DomainType.QEMU, KVMReason.NO_DEVICE, False, "Intel", ["/dev/kvm does not exist"]),
    ("no-module", DomainType.QEMU, KVMReason.NO_MODULE, None, "AMD", ["modprobe kvm_amd"]),
    ("pvm-only", DomainType.QEMU, KVMReason.PVM_ONLY, None, "AMD", ["kvm_pvm", "PVM", "software emulation"]),
]


@pytest.mark.parametrize("case,dtype,reason,nested,vendor,words", CASES, ids=[c[0] for c in CASES])
def test_decision_from_recorded_hosts(case: str, dtype: DomainType, reason: KVMReason, nested: bool | None,
                                      vendor: str, words: list[str]) -> None:
    facts = gather_facts(HOSTS / case)
    decision = decide(facts)
    assert (decision.domain_type, decision.reason, decision.nested) == (dtype, reason, nested)
    assert facts.vendor == vendor
    for word in words:
        assert word in decision.message, decision.message


def test_facts_carry_capacity_and_cpu_names() -> None:
    facts = gather_facts(HOSTS / "intel-nested")
    assert facts.cpus == 4 and facts.memory_bytes == 65859240 * 1024
    assert facts.model == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert facts.modules == {"kvm", "kvm_intel"} and facts.kvm_device == "usable"
    pvm = gather_facts(HOSTS / "pvm-only")
    assert pvm.is_virtual_machine and pvm.modules == {"kvm", "kvm_pvm"} and pvm.hardware_flag == ""


def test_forcing_emulation_and_requiring_kvm() -> None:
    intel = gather_facts(HOSTS / "intel-nested")
    forced = decide(intel, forced="qemu")
    assert forced.domain_type is DomainType.QEMU and forced.reason is KVMReason.EMULATION_FORCED
    assert decide_required(intel, "kvm").kvm
    with pytest.raises(KVMUnavailable, match="PVMOnly"):
        decide_required(gather_facts(HOSTS / "pvm-only"), "kvm")


def test_a_character_device_that_is_not_kvm_is_unusable() -> None:
    assert _kvm_device(Path("/dev/null")).startswith("unusable: KVM_GET_API_VERSION failed")
    assert _kvm_device(Path("/nonexistent/kvm")) == "absent"
