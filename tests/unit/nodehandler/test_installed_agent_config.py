"""The agent configurations the install writes (the embedded_server and embedded_agent roles'
templates) load as valid `dvp agent` settings with the cross-host VM routes on."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from controlplane.nodehandler.config import load_config_file

REPO = Path(__file__).resolve().parents[3]
VARS = {
    "ansible_managed": "test", "ansible_nodename": "Worker-1", "dvp_node_ip": "192.168.5.3",
    "dvp_agent_console_port": 10250, "dvp_vm_cidrs": ["10.66.0.0/16"], "dvp_api_address": "192.168.5.2",
    "dvp_dvcr_port": 5443,
    "dvp_layout": {"config_dir": "/etc/dvp", "state_dir": "/var/lib/dvp", "run_dir": "/run/dvp"},
}


@pytest.mark.parametrize("role", ["embedded_server", "embedded_agent"])
def test_installed_agent_config_turns_vm_routes_on(role: str, tmp_path: Path) -> None:
    template = (REPO / "playbooks/roles" / role / "templates/agent.yaml.j2").read_text()
    text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(**VARS)
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    config = load_config_file(path, kubeconfig=Path("/k"), pki_dir=Path("/p"))
    assert config.vm_routes is True and config.vm_route_mode == "auto"
    assert (config.node_ip, config.vm_cidr) == ("192.168.5.3", "10.66.0.0/16")
