"""Virtualization checks: does this host give VMs hardware virtualization?

The truth comes from the host, in order: the CPU flags (vmx/svm), the vendor KVM module
actually present (kvm_intel/kvm_amd), a usable /dev/kvm. A /dev/kvm alone proves nothing: the
`kvm_pvm` module provides one without CPU flags and runs only specially built guests, so such a
host is reported as what it is — no hardware virtualization, VMs under software emulation —
an error for `production` and a warning for `evaluation`.
"""

from __future__ import annotations

from installer.checks.context import CheckContext
from installer.checks.model import Severity
from installer.checks.registry import Outcome, by_profile, checker, fail, ok

check = checker("virtualization")
FACTS = ("connection.facts",)
HW = by_profile(production=Severity.ERROR, evaluation=Severity.WARNING)
EMULATION = "no hardware virtualization; VMs will run under software emulation"
VENDOR_MODULE = {"vmx": "kvm_intel", "svm": "kvm_amd"}


@check("virt.cpu_flags", "CPU flag vmx (Intel VT-x) or svm (AMD-V)", severity=HW, depends=FACTS)
def cpu_flags(ctx: CheckContext) -> Outcome:
    f = ctx.facts
    expected = "vmx (Intel VT-x) or svm (AMD-V) in the CPU flags"
    cpu = f"{f.cpu.vendor} {f.cpu.model}".strip() or "unknown CPU"
    flag = f.hw_virt_flag
    if flag is not None:
        return ok(f"{flag} ({cpu})", expected)
    observed = [f"no vmx/svm in the CPU flags ({cpu})"]
    if f.kvm_pvm:
        observed.append("/dev/kvm is provided by kvm_pvm, which runs only PVM-enabled guest kernels")
    vm = f.vm_evidence
    if vm:
        observed.append(f"the host is itself a VM ({vm})")
        fix = (
            "enable nested virtualization on the hypervisor that runs this host: expose vmx/svm to it "
            "(CPU mode host-passthrough; on a KVM host `options kvm_intel nested=1` or `kvm_amd nested=1`)"
        )
    else:
        fix = "enable Intel VT-x / AMD-V (SVM) in the firmware (BIOS/UEFI) settings"
    if ctx.profile == "evaluation":
        fix += "; or accept software emulation (slow) for this evaluation"
    return fail("; ".join(observed), expected, fix, message=EMULATION)


@check("virt.kvm_module", "the vendor KVM module (kvm_intel or kvm_amd) is loaded", severity=HW, depends=("virt.cpu_flags",))
def kvm_module(ctx: CheckContext) -> Outcome:
    f = ctx.facts
    flag = f.hw_virt_flag
    assert flag is not None
    module = VENDOR_MODULE[flag]
    expected = f"{module} loaded (or built in)"
    state = f.modules.state(module)
    if state in ("loaded", "built-in"):
        return ok(f"{module} {state}", expected)
    if state == "loadable":
        return fail(
            f"{module} is not loaded (the module exists)",
            expected,
            f"`modprobe {module}`; if it fails with 'disabled by bios', enable virtualization in the firmware",
            message=EMULATION,
        )
    return fail(f"{module} is not available in this kernel", expected, f"use a kernel with {module}", message=EMULATION)


@check("virt.dev_kvm", "/dev/kvm exists and is readable and writable", severity=HW, depends=("virt.kvm_module",))
def dev_kvm(ctx: CheckContext) -> Outcome:
    dev = ctx.facts.device("/dev/kvm")
    expected = "a character device, read-write for root"
    if dev is None:
        return fail("/dev/kvm does not exist", expected, "load the KVM modules (udev creates /dev/kvm)", message=EMULATION)
    if not dev.char:
        return fail("/dev/kvm is not a character device", expected, "remove the stray file; udev creates /dev/kvm")
    if not (dev.readable and dev.writable):
        return fail("/dev/kvm is not read-write", expected, "fix its mode (0660 root:kvm)", message=EMULATION)
    return ok("character device, read-write", expected)


def _nested_severity(ctx: CheckContext) -> Severity:
    # Required (error in production) when the host is itself a VM; informative otherwise.
    if ctx.facts.vm_evidence and ctx.profile == "production":
        return Severity.ERROR
    return Severity.WARNING


@check(
    "virt.nested",
    "nested virtualization reported by the KVM module (required when the host is itself a VM)",
    severity=_nested_severity,
    depends=("virt.kvm_module",),
)
def nested(ctx: CheckContext) -> Outcome:
    f = ctx.facts
    flag = f.hw_virt_flag
    assert flag is not None
    module = VENDOR_MODULE[flag]
    where = f"/sys/module/{module}/parameters/nested"
    vm = f.vm_evidence
    expected = f"{module} nested=Y or 1" + (" (this host is a VM)" if vm else "")
    value = f.nested_value(module)
    if value is None:
        return fail(f"{where} is missing", expected, f"use a kernel whose {module} supports nested virtualization")
    enabled = value.strip().upper() in ("Y", "1")
    observed = f"{module} nested={value.strip()}" + (f"; the host is a VM ({vm})" if vm else "")
    if enabled:
        return ok(observed, expected)
    return fail(
        observed,
        expected,
        f"echo 'options {module} nested=1' > /etc/modprobe.d/kvm-nested.conf, then reload {module} (or reboot)",
        message="VMs on this host cannot run hypervisors of their own",
    )


def _device_check(path: str, *, name: str, module: str, severity: Severity, why: str):  # type: ignore[no-untyped-def]
    def run(ctx: CheckContext) -> Outcome:
        dev = ctx.facts.device(path)
        expected = "a character device, read-write for root"
        if dev is None:
            return fail(f"{path} does not exist", expected, f"load {module} (`modprobe {module}`); {why}")
        if not dev.char or not (dev.readable and dev.writable):
            return fail(f"{path} is not a read-write character device", expected, f"recreate {path}; {why}")
        return ok("character device, read-write", expected)

    return check(name, f"{path} usable ({why})", severity=severity, depends=(f"system.module.{module}",))(run)


dev_tun = _device_check("/dev/net/tun", name="virt.dev_tun", module="tun", severity=Severity.ERROR, why="VM network interfaces")
dev_vhost_net = _device_check(
    "/dev/vhost-net", name="virt.dev_vhost_net", module="vhost_net", severity=Severity.WARNING,
    why="in-kernel virtio-net acceleration",
)


@check("virt.iommu", "an IOMMU is enabled (needed only for PCI device passthrough)", severity=Severity.WARNING, depends=FACTS)
def iommu(ctx: CheckContext) -> Outcome:
    f = ctx.facts
    expected = "IOMMU groups present"
    if f.iommu_groups > 0:
        return ok(f"{f.iommu_groups} IOMMU groups", expected)
    vendor = "intel_iommu=on" if "Intel" in f.cpu.vendor else "amd_iommu=on" if "AMD" in f.cpu.vendor else "intel_iommu=on / amd_iommu=on"
    return fail(
        "no IOMMU groups",
        expected,
        f"enable VT-d / AMD-Vi in the firmware and boot with {vendor} iommu=pt; only needed for device passthrough",
    )


CHECKS = [cpu_flags, kvm_module, dev_kvm, nested, dev_tun, dev_vhost_net, iommu]
