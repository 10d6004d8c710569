"""bench/upgrade: what `dvp upgrade` costs on a one-host platform with 5 running VMs, against
the same binary swap done by hand in the same run.

On a lab host (tests/support/upgradelab.py: own netns, PID namespace, sshd and libvirtd)
version A (this tree, 0.1.0) is installed per the on-host layout and 5 VMs are booted from the
guest test image. Every VM's /cgi-bin/uptime is probed every 100 ms from the host throughout.

- peer, "by hand": B copied to the host with OpenSSH's `scp -O` (the lab sshd has no SFTP subsystem) (as an operator on another machine
  would, and as the upgrade copies it over SSH), then over `ssh`: `/etc/init.d/dvp-server stop`,
  B moved over /usr/local/bin/dvp, `start`; timed from the copy until the API answers /readyz, the controllers lead on B and the Node is Ready on B
  (B migrates the datastore on start, as in the upgrade). Then A is put back by hand (stop,
  copy A, restore the datastore copy taken before, start), not timed.
- ours: `dvp upgrade --bundle B` (SSH, preflight, plan, backup, stage, replace, restart,
  health checks, record), wall time and per step from its record.

Prints both wall times and the ratio (target: overhead under 2x the manual swap), each
phase's unreachable time (longest interval a VM did not answer; target 0 s), and per-step times.

    python -m bench.upgrade [-o json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import Row, print_table
from controlplane.common.clusterversions import collect
from controlplane.common.kube.quick import quick_client
from installer import hostlayout
from nodeimage.guest import ensure_image
from tests.support.dist import built_dvp
from tests.support.guestprobe import unreachable_intervals
from tests.support.upgradelab import UpgradeLab

B_VERSION, B_ENV = "0.2.0", {"DVP_BUILD_FEATURES": "upgrade-test"}
VMS = 5


class Probe:
    def __init__(self, lab: UpgradeLab, ips: list[str]) -> None:
        self.proc = lab.probe(lab.master, ips, every=0.1)
        self.lines: list[dict[str, Any]] = []

    def stop(self) -> dict[str, float]:
        out, _ = self.proc.communicate(timeout=30)  # closing its stdin ends the probe
        self.lines = [json.loads(ln) for ln in out.decode().splitlines() if ln.strip()]
        return unreachable_intervals(self.lines)


def healthy_on(lab: UpgradeLab, version: str) -> bool:
    try:
        kube = quick_client(lab.kubeconfig)
        if kube.status_of("/readyz", timeout=2) != 200:
            return False
        cv = collect(kube)
    except Exception:
        return False
    node = next((n for n in cv.nodes if n.name == lab.master.node), None)
    return (cv.server == version and cv.controllers == version and cv.controllers_leading and node is not None
            and node.version == version and node.ready)


def wait_healthy(lab: UpgradeLab, version: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not healthy_on(lab, version):
        if time.monotonic() > deadline:
            raise RuntimeError(f"platform not healthy on {version} within {timeout:.0f}s")
        time.sleep(0.2)


def manual_swap(lab: UpgradeLab, binary: Path, known_hosts: Path) -> float:
    m = lab.master
    opts = ["-i", str(lab.lab.client_key), "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes"]
    t0 = time.monotonic()
    subprocess.run(["scp", "-q", "-O", *opts, str(binary), f"root@{m.host.address}:{hostlayout.BINARY}.new"], check=True)
    subprocess.run(["ssh", *opts, f"root@{m.host.address}",
                    f"{hostlayout.service_command('dvp-server', 'stop')} && mv -f {hostlayout.BINARY}.new "
                    f"{hostlayout.BINARY} && {hostlayout.service_command('dvp-server', 'start')}"],
                   check=True, capture_output=True)
    wait_healthy(lab, B_VERSION)
    return time.monotonic() - t0


def put_back(lab: UpgradeLab, binary: Path, db_copy: Path) -> None:
    m = lab.master
    m.sh(hostlayout.service_command("dvp-server", "stop"))
    shutil.copyfile(binary, m.path(hostlayout.BINARY))
    m.sh(f"{hostlayout.BINARY} datastore restore --data-dir {hostlayout.SERVER_DATA_DIR} --from {db_copy}")
    m.sh(hostlayout.service_command("dvp-server", "start"))
    wait_healthy(lab, "0.1.0")


def run() -> tuple[list[Row], dict[str, Any]]:
    a, b = built_dvp(), built_dvp(version=B_VERSION, extra_env=B_ENV)
    image = ensure_image("cloud")
    lab = UpgradeLab()
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-upgrade-"))
    try:
        lab.install_by_hand(a)
        ips = lab.boot_vms(image.qcow2, VMS)
        wait_healthy(lab, "0.1.0")
        lab.master.sh(f"{hostlayout.BINARY} datastore backup --data-dir {hostlayout.SERVER_DATA_DIR} "
                      f"--to {hostlayout.STATE_DIR}/bench-before.db")
        db_copy = f"{hostlayout.STATE_DIR}/bench-before.db"
        shutil.copyfile(a, work / "dvp-a")

        config = lab.install_config(work / "install.yaml")
        probe = Probe(lab, ips)
        manual = manual_swap(lab, b, lab.lab.workdir / "known_hosts")
        manual_down = max(probe.stop().values())
        put_back(lab, work / "dvp-a", Path(db_copy))

        probe = Probe(lab, ips)
        t0 = time.monotonic()
        done = subprocess.run([str(b), "upgrade", "--config", str(config), "--state-dir", str(work / "state"),
                               "--bundle", str(b), "-o", "json"], capture_output=True, text=True, timeout=900,
                              env=lab.binary_env())
        ours = time.monotonic() - t0
        ours_down = max(probe.stop().values())
        if done.returncode != 0:
            raise RuntimeError(f"dvp upgrade failed:\n{done.stdout}\n{done.stderr}")
        record = json.loads(done.stdout)["record"]
        steps = {s["name"]: s["seconds"] for s in record["hosts"][0]["steps"]}
    finally:
        lab.close()
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        Row("one host, 5 running VMs: A -> B wall time", ours, manual, "s", "lower"),
        Row("longest VM unreachable interval (100 ms probes)", ours_down, manual_down, "s", "lower"),
    ]
    return rows, {"steps": steps, "overhead": ours / manual, "probes": len(probe.lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows, extra = run()
    print_table("bench/upgrade: one-host platform, 5 running VMs, dvp 0.1.0 -> 0.2.0 (with a storage migration)",
                "dvp upgrade", "by hand: stop, copy, start", rows, json_out=args.output == "json")
    if args.output == "table":
        print("dvp upgrade per step [s]: " + ", ".join(f"{k} {v:.2f}" for k, v in extra["steps"].items()))
        print(f"overhead: {extra['overhead']:.2f}x the manual swap (target < 2x); VM unreachable: "
              f"{rows[1].ours:.2f} s (target 0 s); {extra['probes']} probes")
    else:
        print(json.dumps(extra))


if __name__ == "__main__":
    main()
