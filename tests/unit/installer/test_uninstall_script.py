"""The uninstall's host script, run against a scratch tree laid out like an installed host: the
dry run lists exactly what the real run removes, --keep-data keeps the datastore and volumes,
and a second run finds nothing (idempotent); qemu.conf is left, without the lines naming QEMU's
migration certificates, which go with them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from installer import hostlayout
from installer.uninstall.hostscript import host_script, parse_report, removed_paths

INSTALLED = [
    hostlayout.BINARY, hostlayout.BINARY_PREVIOUS, hostlayout.SERVER_CONFIG, hostlayout.AGENT_CONFIG,
    hostlayout.service_paths("dvp-server").init_script, "/etc/modules-load.d/dvp.conf", "/etc/sysctl.d/90-dvp.conf",
    f"{hostlayout.LOG_DIR}/dvp-server.log", "/var/cache/dvp/0123abcd/dvp/dvp",
    f"{hostlayout.SERVER_DATA_DIR}/datastore.db", f"{hostlayout.STATE_DIR}/volumes/default/disk.abc.qcow2",
    f"{hostlayout.STATE_DIR}/images/key.img", f"{hostlayout.STATE_DIR}/network/dvpnone0/leases",
    f"{hostlayout.QEMU_MIGRATION_PKI}/server-key.pem",
]
QEMU_CONF = f'# comment\nuser = "root"\nmigrate_tls_x509_cert_dir = "{hostlayout.QEMU_MIGRATION_PKI}"\n' \
            'migrate_tls_x509_verify = 1\n'



@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in INSTALLED:
        path = tmp_path / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    # a bridge name no host has, so the script never touches a real interface here
    (tmp_path / hostlayout.AGENT_CONFIG.lstrip("/")).write_text("bridge: dvpnone0\n")
    (tmp_path / "etc/libvirt").mkdir(parents=True)
    (tmp_path / "etc/libvirt/qemu.conf").write_text(QEMU_CONF)
    (tmp_path / "etc/other.conf").write_text("kept\n")
    return tmp_path


def _run(root: Path, *, dry_run: bool, keep_data: bool = False) -> str:
    script = host_script(dry_run=dry_run, keep_data=keep_data, vm_storage_dir=f"{hostlayout.STATE_DIR}/volumes",
                         root=str(root))
    # in a network namespace of its own: the script deletes the VM bridge and routes it finds, and
    # the host's (another test's, or a stray `dvp server`'s dvpbr0) must be neither seen nor touched
    done = subprocess.run(["unshare", "--net", "sh", "-s"], input=script, capture_output=True, text=True, check=True,
                          timeout=60)
    return done.stdout


def _left(root: Path) -> set[str]:
    return {"/" + str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_dry_run_lists_what_the_real_run_removes(root: Path) -> None:
    before = _left(root)
    dry = parse_report("h", _run(root, dry_run=True), dry_run=True)
    assert _left(root) == before  # nothing changed
    assert dry.disks == 1
    assert any(line.startswith("would remove ") for line in dry.lines())
    real = parse_report("h", _run(root, dry_run=False), dry_run=False)
    assert real.removed == dry.removed and real.deleted == dry.deleted
    assert dry.deleted == [f"{root}/etc/libvirt/qemu.conf migration TLS settings"]
    assert (root / "etc/libvirt/qemu.conf").read_text() == '# comment\nuser = "root"\n'
    assert _left(root) == {"/etc/libvirt/qemu.conf", "/etc/other.conf"}
    assert [p.removeprefix(str(root)) for p in real.left] == ["/etc/libvirt/qemu.conf"]
    for path in removed_paths() + [hostlayout.STATE_DIR]:
        assert not (root / path.lstrip("/")).exists(), path
    again = parse_report("h", _run(root, dry_run=False), dry_run=False)
    assert again.removed == [] and again.stopped == [] and again.deleted == [] and again.disks == 0


def test_keep_data_keeps_datastore_and_volumes(root: Path) -> None:
    report = parse_report("h", _run(root, dry_run=False, keep_data=True), dry_run=False)
    left = _left(root)
    assert f"{hostlayout.SERVER_DATA_DIR}/datastore.db" in left
    assert f"{hostlayout.STATE_DIR}/volumes/default/disk.abc.qcow2" in left
    assert f"{hostlayout.STATE_DIR}/images/key.img" not in left  # caches go
    assert hostlayout.BINARY not in left and hostlayout.SERVER_CONFIG not in left
    kept = {p.removeprefix(str(root)) for p in report.kept}
    assert kept == {hostlayout.SERVER_DATA_DIR, f"{hostlayout.STATE_DIR}/volumes"}


def test_a_stale_pid_file_is_not_a_process_to_kill(root: Path) -> None:
    pid_file = root / hostlayout.service_paths("dvp-server").pid_file.lstrip("/")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (root / hostlayout.STATE_DIR.lstrip("/") / "network/dvpnone0/dnsmasq.pid").write_text(f"{sleeper.pid}\n")
        report = parse_report("h", _run(root, dry_run=False), dry_run=False)
        assert sleeper.poll() is None  # not a dnsmasq: left alone
        assert not any(s.startswith("dnsmasq") for s in report.stopped)
    finally:
        sleeper.kill()
        sleeper.wait()
