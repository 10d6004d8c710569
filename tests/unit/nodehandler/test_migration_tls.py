"""Migrations are encrypted where the install set up QEMU's migration certificates: the same
certificates as libvirtd's listener, under the names QEMU reads, and the node handler asks for
`VIR_MIGRATE_TLS` exactly when this host has them."""

from __future__ import annotations

from pathlib import Path

from controlplane.api.migration import MigrationRequest
from controlplane.common import pki
from controlplane.common.libvirt_pki import FILES, QEMU_NAMES, copy_for_qemu, ensure_libvirt_pki
from controlplane.nodehandler.layout import QEMU_MIGRATION_PKI, Layout
from controlplane.nodehandler.migrations import migration_options
from installer import hostlayout
from installer.uninstall.hostscript import removed_paths


def test_qemu_gets_the_listener_certificates_under_its_own_names(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path / "ca", common_name="test-ca")
    ensure_libvirt_pki(ca, tmp_path / "libvirt", node_name="n1", address="10.0.0.1")
    copy_for_qemu(tmp_path / "libvirt", tmp_path / "qemu")
    assert set(QEMU_NAMES) == set(FILES)
    assert sorted(p.name for p in (tmp_path / "qemu").iterdir()) == sorted(QEMU_NAMES.values())
    for name, qemu_name in QEMU_NAMES.items():
        assert (tmp_path / "qemu" / qemu_name).read_bytes() == (tmp_path / "libvirt" / name).read_bytes()
        assert (tmp_path / "qemu" / qemu_name).stat().st_mode & 0o077 == 0


def test_the_stream_is_encrypted_exactly_where_qemu_has_its_certificates(tmp_path: Path) -> None:
    layout = Layout(state_dir=tmp_path / "state", run_dir=tmp_path / "run", qemu_migration_pki=tmp_path / "qemu")
    req = MigrationRequest(id="op", target_node="n2", target_address="10.0.0.2", auto_converge=True,
                           timeout_seconds=30)
    before = migration_options(req, layout)
    assert not before.tls and before.auto_converge and before.timeout == 30.0
    layout.qemu_migration_pki.mkdir(parents=True)
    (layout.qemu_migration_pki / "ca-cert.pem").write_text("a CA")
    assert migration_options(req, layout).tls


def test_the_install_and_the_node_handler_agree_on_where_qemu_finds_them() -> None:
    assert str(QEMU_MIGRATION_PKI) == hostlayout.QEMU_MIGRATION_PKI
    assert hostlayout.QEMU_MIGRATION_PKI in removed_paths()
