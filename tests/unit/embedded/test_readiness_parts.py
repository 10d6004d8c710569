"""The pieces behind `dvp server`'s readiness: the supervisor's status file, /readyz's answer
for each mix of component states, the flags handed to component processes, sd_notify."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from controlplane.apiserver.health import HealthChecks
from controlplane.apiserver.readyz import ComponentChecks
from controlplane.common.componentstatus import ComponentStatus, StatusReader, read_statuses, write_statuses
from controlplane.embedded.config import ServerFlags, SupervisorSettings
from controlplane.embedded.sdnotify import notify


@pytest.mark.parametrize(("statuses", "query", "code", "text"), [
    ([], "?verbose", 200, "[+]ping ok\n[+]log ok\n[+]apiserver ok\nreadyz check passed\n"),
    ([ComponentStatus("dvcr", "ready"), ComponentStatus("controllers", "ready")], "", 200, "ok"),
    ([ComponentStatus("dvcr", "failed", "killed by SIGKILL; restarting in 1s")], "", 503,
     "[+]ping ok\n[+]log ok\n[+]apiserver ok\n[-]dvcr failed: killed by SIGKILL; restarting in 1s\n"
     "readyz check failed\n"),
    ([ComponentStatus("controllers", "starting")], "?verbose&exclude=controllers", 200,
     "[+]ping ok\n[+]log ok\n[+]apiserver ok\n[+]controllers excluded: ok\nreadyz check passed\n"),
    ([ComponentStatus("apiserver", "starting"), ComponentStatus("dvcr", "ready")], "?verbose", 200,
     "[+]ping ok\n[+]log ok\n[+]apiserver ok\n[+]dvcr ok\nreadyz check passed\n"),
], ids=["no-supervisor", "all-ready-terse", "one-failed", "excluded", "own-entry-ignored"])
def test_readyz_answers(tmp_path: Path, statuses: list[ComponentStatus], query: str, code: int, text: str) -> None:
    path = tmp_path / "components.json"
    if statuses:
        write_statuses(path, statuses)
    health = HealthChecks()
    health.add_source(ComponentChecks(lambda: True, status_file=path))
    response = health.handle(make_mocked_request("GET", "/readyz" + query), "/readyz")
    assert response is not None
    assert (response.status, response.text) == (code, text)


def test_readyz_single_check_and_not_serving_yet(tmp_path: Path) -> None:
    health = HealthChecks()
    health.add_source(ComponentChecks(lambda: False))
    response = health.handle(make_mocked_request("GET", "/readyz/apiserver"), "/readyz/apiserver")
    assert response is not None
    assert (response.status, response.text) == (503, "internal server error: not serving yet\n")
    assert health.handle(make_mocked_request("GET", "/livez"), "/livez").text == "ok"  # type: ignore[union-attr]
    assert health.handle(make_mocked_request("GET", "/readyz/x"), "/readyz/x").status == 404  # type: ignore[union-attr]


def test_status_file_round_trip_and_damage(tmp_path: Path) -> None:
    path = tmp_path / "components.json"
    reader = StatusReader(path)
    assert reader.read() == []
    statuses = [ComponentStatus("dvcr", "ready", "", 12, 1), ComponentStatus("controllers", "failed", "boom")]
    write_statuses(path, statuses)
    assert reader.read() == statuses
    path.write_text("{not json")
    assert [s.state for s in read_statuses(path)] == ["failed"]


def test_flags_survive_the_trip_to_a_component_process(tmp_path: Path) -> None:
    flags = ServerFlags(data_dir=tmp_path, port=0, tls_san=("a", "b"), vm_cidrs=("10.1.0.0/24",),
                        agent_config=tmp_path / "agent.yaml",
                        supervisor=SupervisorSettings(restart_backoff=(0.1, 0.2)))
    assert ServerFlags.from_json(flags.to_json()) == flags


def test_sd_notify_sends_one_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1") is True
        assert sock.recv(100) == b"READY=1"


def test_the_masters_node_handler_talks_over_the_api_servers_socket(tmp_path: Path) -> None:
    """Beside the API server (`dvp server`), the handler's requests take its Unix socket, as the
    controllers' do; the socket is not a setting of `dvp agent --config` (workers have none)."""
    from controlplane.embedded.config import agent_config
    from controlplane.nodehandler.config import ConfigError, load_config_file

    flags = ServerFlags(data_dir=tmp_path, port=0, vm_cidrs=("10.1.0.0/24",))
    config = agent_config(flags)
    assert config.api_socket == flags.api_socket == tmp_path / "apiserver.sock"
    assert config.kubeconfig == flags.agent_kubeconfig
    path = tmp_path / "agent.yaml"
    path.write_text("api-socket: /tmp/elsewhere.sock\n")
    with pytest.raises(ConfigError, match="api-socket: unknown setting"):
        load_config_file(path, kubeconfig=Path("/k"))
