"""Numbers and names the preflight checks compare against, in one place.

Resource minimums for `production` follow DKP/DVP's published node requirements (master: 4
CPUs, 8 GB RAM, 60 GB disk; workers "similar to the master"); `evaluation` is what a one-host
trial on a small machine needs. Memory is compared with MemTotal, which the kernel reports a
little below the installed RAM, hence the 7.5 GiB floor for "8 GB".
"""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1024**3
MiB = 1024**2


@dataclass(frozen=True)
class Minimums:
    cpus: int
    memory_bytes: int
    disk_free_bytes: int


MINIMUMS: dict[tuple[str, str], Minimums] = {
    ("production", "master"): Minimums(cpus=4, memory_bytes=7680 * MiB, disk_free_bytes=60 * GiB),
    ("production", "worker"): Minimums(cpus=4, memory_bytes=7680 * MiB, disk_free_bytes=60 * GiB),
    ("evaluation", "master"): Minimums(cpus=2, memory_bytes=3584 * MiB, disk_free_bytes=20 * GiB),
    ("evaluation", "worker"): Minimums(cpus=1, memory_bytes=1536 * MiB, disk_free_bytes=10 * GiB),
}

MIN_KERNEL = (5, 8)
# Live migration moves a VM between hosts' KVMs; 5.15 (an LTS kernel shipped by Ubuntu 22.04,
# and older than Debian 12's 6.1) is the floor we recommend for matching KVM features.
RECOMMENDED_KERNEL = (5, 15)
MIN_PYTHON = (3, 8)  # what ansible-core 2.18 requires on managed hosts
MAX_CLOCK_DRIFT_SECONDS = 600.0
# Between the hosts of one platform (a worker against the master), as `dvp agent --check` judges it.
MAX_NODE_CLOCK_SKEW_SECONDS = 60.0

# Ports the platform listens on, by role (embedded target); dkp adds etcd on masters.
API_PORT = 6443
DVCR_PORT = 5443
AGENT_PORT = 10250
ETCD_PORTS = (2379, 2380)


def required_ports(target: str, role: str) -> dict[int, str]:
    ports = {AGENT_PORT: "dvp agent"}
    if role == "master":
        ports[API_PORT] = "API server"
        ports[DVCR_PORT] = "DVCR"
        if target == "dkp":
            ports.update({p: "etcd" for p in ETCD_PORTS})
    return ports


KERNEL_MODULES = ("kvm", "vhost_net", "tun", "br_netfilter", "overlay")
# Kernel config symbol that builds each module in (=y) or as a module (=m).
MODULE_KCONFIG = {
    "kvm": "CONFIG_KVM",
    "kvm_intel": "CONFIG_KVM_INTEL",
    "kvm_amd": "CONFIG_KVM_AMD",
    "vhost_net": "CONFIG_VHOST_NET",
    "tun": "CONFIG_TUN",
    "br_netfilter": "CONFIG_BRIDGE_NETFILTER",
    "overlay": "CONFIG_OVERLAY_FS",
}

SUPPORTED_PACKAGE_MANAGERS = ("apt-get", "dnf", "yum")

# Files an earlier dvp installation leaves (issue 7 writes these), other Kubernetes
# installations and container runtimes. Checked under DVP_HOST_ROOT.
DVP_LEFTOVERS = (
    "/etc/dvp",
    "/var/lib/dvp/server",
    "/var/lib/dvp/agent",
    "/etc/systemd/system/dvp-server.service",
    "/etc/systemd/system/dvp-agent.service",
    "/etc/init.d/dvp-server",
    "/etc/init.d/dvp-agent",
)
KUBERNETES_LEFTOVERS = (
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/kubelet.conf",
    "/var/lib/kubelet/config.yaml",
    "/var/lib/etcd/member",
    "/etc/rancher/k3s/k3s.yaml",
    "/etc/rancher/rke2/rke2.yaml",
)
RUNTIME_LEFTOVERS = (
    "/run/containerd/containerd.sock",
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
)
DVP_PROCESSES = ("dvp",)
KUBERNETES_PROCESSES = ("kubelet", "kube-apiserver", "etcd", "k3s", "k3s-server", "k3s-agent", "rke2")
RUNTIME_PROCESSES = ("containerd", "dockerd", "crio", "cri-dockerd")
