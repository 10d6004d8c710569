"""bench/install: wall time of an unattended one-host embedded install with the single binary
(`dist/dvp install --config`, preflight to verified), split by phase, against the same
playbooks run with plain `ansible-playbook` (facts gathered by Ansible, no phase engine) onto
the same freshly cleaned lab host in the same run — the installer's own overhead — and the
ratio. The life cycle after it: `dvp uninstall` against the peer's way of cleaning a host (stop
the service, `rm -rf` the same paths), and a re-install after `dvp uninstall` against the first
install of the same run. Also the binary's start-up: `dvp --version` warm (bundle already
unpacked) against the first start (unpacking).

The lab host shares this machine's file system, so this writes /usr/local/bin/dvp, /etc/dvp,
/var/lib/dvp ... and removes them again (tests/support/installed_host.py).

    python -m bench.install [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Row, print_table
from installer import hostlayout
from installer.config import load_config
from installer.install.inventory import ansible_env, build_inventory, playbook_vars
from tests.services.libvirtd import LibvirtDaemons
from tests.support.dist import ROOT, built_dvp
from tests.support.hostlab import HostLab, LabHost
from tests.support.installed_host import layout_session, remove_installed

ANSIBLE_PHASES = ("prepare", "bootstrap", "controlplane")


def _config(lab: HostLab, host: LabHost, work: Path) -> Path:
    known = work / "known_hosts"
    known.write_text(lab.known_hosts())
    path = work / "install.yaml"
    path.write_text(f"""apiVersion: dvp.deckhouse.io/v1alpha1
kind: InstallConfig
ssh: {{user: root, privateKeyFiles: [{lab.client_key}], useAgent: false, knownHostsFile: {known}}}
hosts: [{{address: {host.address}, role: master}}]
virtualization: {{virtualMachineCIDRs: [10.66.10.0/24]}}
checks: {{profile: evaluation}}
""")
    return path


def _clean(host: LabHost) -> None:
    host.run("sh", "-c", hostlayout.service_command("dvp-server", "stop"))
    remove_installed()


def _ours(dvp: Path, config: Path, work: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    t0 = time.monotonic()
    done = subprocess.run([str(dvp), "install", "--config", str(config), "--state-dir", str(work / "state"),
                           "-o", "json"], capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t0
    out = json.loads(done.stdout or "{}")
    if done.returncode != 0:
        raise SystemExit(f"dvp install failed: {out.get('message')}\n{done.stderr[-2000:]}")
    return wall, {p["phase"]: float(p["elapsed"]) for p in out["phases"]}


def _uninstall(dvp: Path, config: Path, work: Path, env: dict[str, str]) -> float:
    t0 = time.monotonic()
    done = subprocess.run([str(dvp), "uninstall", "--config", str(config), "--state-dir", str(work / "state"),
                           "--yes", "-o", "json"], capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"dvp uninstall failed: {done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def _timed_clean(host: LabHost) -> float:
    t0 = time.monotonic()
    _clean(host)
    return time.monotonic() - t0


def _peer(dvp: Path, config_path: Path, work: Path) -> float:
    """site.yml with plain ansible-playbook: same inventory and variables, Ansible gathers facts."""
    config = load_config(config_path)
    inventory, secrets = build_inventory(config)
    inv = work / "peer-inventory.json"
    inv.write_text(json.dumps(inventory))
    extra = work / "peer-vars.json"
    extra.write_text(json.dumps(playbook_vars(config, binary=dvp)))
    env = {**os.environ, **ansible_env(facts_dir=work / "peer-facts", secrets=secrets),
           "ANSIBLE_CACHE_PLUGIN": "memory", "ANSIBLE_GATHERING": "implicit"}
    playbook = Path(sys.executable).with_name("ansible-playbook")
    t0 = time.monotonic()
    done = subprocess.run([str(playbook), "-i", str(inv), "-e", f"@{extra}", str(ROOT / "playbooks" / "site.yml")],
                          capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"ansible-playbook failed:\n{done.stdout[-3000:]}")
    return wall


def _startup(dvp: Path, cache: Path) -> tuple[float, float]:
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "DVP_CACHE_DIR": str(cache)}
    t0 = time.monotonic()
    subprocess.run([str(dvp), "--version"], check=True, capture_output=True, env=env)
    first = time.monotonic() - t0
    warm = []
    for _ in range(5):
        t0 = time.monotonic()
        subprocess.run([str(dvp), "--version"], check=True, capture_output=True, env=env)
        warm.append(time.monotonic() - t0)
    return sorted(warm)[len(warm) // 2], first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    dvp = built_dvp()
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-install-"))
    daemons = LibvirtDaemons()
    daemons.acquire()
    lab = HostLab()
    try:
        with layout_session():
            host = lab.add_host("bench")
            config = _config(lab, host, work)
            env = {**os.environ, "DVP_CACHE_DIR": str(work / "cli-cache")}
            ours_wall, phases = _ours(dvp, config, work, env)
            uninstall_wall = _uninstall(dvp, config, work, env)
            reinstall_wall, _ = _ours(dvp, config, work, env)
            peer_clean = _timed_clean(host)
            peer_wall = _peer(dvp, config, work)
            _clean(host)
            warm, first = _startup(dvp, work / "startup-cache")
            lab.close()
    finally:
        lab.close()
        daemons.release()
        shutil.rmtree(work, ignore_errors=True)
    ansible_ours = sum(phases.get(p, 0.0) for p in ANSIBLE_PHASES)
    rows = [Row("install, preflight to verified (ours) vs site.yml (peer)", ours_wall, peer_wall, "s", better="lower"),
            Row("Ansible phases: prepare+bootstrap+controlplane vs site.yml", ansible_ours, peer_wall, "s",
                better="lower")]
    rows += [Row(f"  phase {name}", elapsed, None, "s", better="lower") for name, elapsed in phases.items()]
    rows.append(Row("dvp uninstall (ours) vs service stop + rm -rf of the paths (peer)", uninstall_wall, peer_clean,
                    "s", better="lower"))
    rows.append(Row("re-install after dvp uninstall (ours) vs first install (peer)", reinstall_wall, ours_wall, "s",
                    better="lower"))
    rows.append(Row("dvp --version warm (ours) vs first start, unpacking (peer)", warm, first, "s", better="lower"))
    print_table("dvp install: one-host embedded, dist/dvp vs plain ansible-playbook", "dist/dvp install",
                "ansible-playbook site.yml", rows, json_out=args.json)


if __name__ == "__main__":
    main()
