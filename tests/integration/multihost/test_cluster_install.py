"""Acceptance of a three-host install (`cluster3`: `dist/dvp install --config` onto one master and
two workers on lab hosts): every Node Ready with its own address, the virtualization CRDs
served, DVCR answering each worker with the worker's own credentials (and nobody without), each
worker its own identity confined to itself, each host QEMU's migration certificates where
qemu.conf names them. (A second run changing nothing on the three is
checked by `test_hosts_change`, in the same run that adds a fourth host.)"""

from __future__ import annotations

import json

import pytest

from controlplane.common.libvirt_pki import QEMU_NAMES
from installer.hostlayout import QEMU_MIGRATION_PKI
from tests.support.clusterlab import Cluster

pytestmark = pytest.mark.integration

KINDS = ("virtualmachines", "virtualdisks", "virtualimages", "clustervirtualimages", "virtualmachineclasses")


def _dvcr_status(cluster: Cluster, worker_index: int, *, with_token: bool) -> str:
    worker = cluster.workers[worker_index]
    auth = '-H "Authorization: Bearer $(sed -n "s/^ *token: //p" /etc/dvp/agent.kubeconfig)"' if with_token else ""
    done = worker.sh(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert /etc/dvp/agent-ca.crt {auth} "
                     f"https://{cluster.master.host.address}:5443/v2/")
    return done.stdout.strip()


def test_three_nodes_ready_with_their_addresses(cluster3: Cluster) -> None:
    nodes = cluster3.kubectl_json("get", "nodes")["items"]
    ready = cluster3.ready_nodes()
    assert ready == {n.node: True for n in cluster3.nodes}
    assert len(ready) == 3
    addresses = {n["metadata"]["name"]: {a["type"]: a["address"] for a in n["status"]["addresses"]}["InternalIP"]
                 for n in nodes}
    assert addresses == cluster3.addresses
    roles = {n["metadata"]["name"]: sorted(k.split("/", 1)[1] for k in n["metadata"].get("labels") or {}
                                           if k.startswith("node-role.kubernetes.io/")) for n in nodes}
    assert roles == {n.node: ["control-plane" if n.role == "master" else "worker"] for n in cluster3.nodes}


def test_crds_served(cluster3: Cluster) -> None:
    crds = cluster3.kubectl("get", "crd", "-o", "name").stdout.split()
    for kind in KINDS:
        assert f"customresourcedefinition.apiextensions.k8s.io/{kind}.virtualization.deckhouse.io" in crds


def test_dvcr_answers_workers_with_their_own_token_only(cluster3: Cluster) -> None:
    for i in range(len(cluster3.workers)):
        assert _dvcr_status(cluster3, i, with_token=True) == "200"
        assert _dvcr_status(cluster3, i, with_token=False) == "401"


def test_each_worker_has_an_identity_of_its_own(cluster3: Cluster) -> None:
    tokens = set()
    for worker in cluster3.workers:
        kubeconfig = worker.path("/etc/dvp/agent.kubeconfig")
        doc = cluster3.kubectl("auth", "whoami", "-o", "json", check=False, kubeconfig=kubeconfig)
        assert doc.returncode == 0, doc.stderr
        user = json.loads(doc.stdout)["status"]["userInfo"]
        assert user["username"] == f"system:node:{worker.node}"
        assert "system:nodes" in user["groups"] and "system:masters" not in user["groups"]
        tokens.add(kubeconfig.read_text())
    assert len(tokens) == len(cluster3.workers)


def test_qemu_has_the_hosts_migration_certificates_where_qemu_conf_names_them(cluster3: Cluster) -> None:
    for node in cluster3.nodes:
        listing = node.sh(f"cd {QEMU_MIGRATION_PKI} && stat -c '%n %a %G' *").stdout.split("\n")
        assert sorted(line for line in listing if line) == sorted(
            f"{qemu} {'640' if qemu.endswith('key.pem') else '644'} root" for qemu in QEMU_NAMES.values()), listing
        for name, qemu in QEMU_NAMES.items():
            same = node.sh(f"cmp /var/lib/dvp/pki/libvirt/{name} {QEMU_MIGRATION_PKI}/{qemu}", check=False)
            assert same.returncode == 0, (node.name, name, same.stdout)
        conf = node.sh("grep -E '^migrate_tls_x509_(cert_dir|verify) =' /etc/libvirt/qemu.conf").stdout.split("\n")
        assert [line for line in conf if line] == [f'migrate_tls_x509_cert_dir = "{QEMU_MIGRATION_PKI}"',
                                                   "migrate_tls_x509_verify = 1"], (node.name, conf)
