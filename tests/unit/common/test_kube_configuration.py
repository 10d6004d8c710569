"""A kubeconfig's embedded CA stays in memory: loading leaves no file in the temporary
directory (a killed component never ran the loader's atexit clean-up), TLS to a server with a
certificate from that CA still verifies (also from the watch streams' client, made after
requests ran the loader's refresh hook), one from another CA is refused, and a file another
loader in the process uses is left in place."""

from __future__ import annotations

import http.server
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from controlplane.common.kube.client import KubeClient
from controlplane.common.kube.configuration import load_configuration
from controlplane.common.kube.quick import quick_client
from controlplane.common.kubeconfig import KubeconfigError, read_kubeconfig, write_kubeconfig
from controlplane.common.pki import ensure_ca
from controlplane.dvcr.auth import Authenticator
from installer.uninstall import vms as uninstall_vms
from tests.support.tlsserver import tls_server as serve_tls


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"kind":"Status","status":"Success"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """An HTTPS server on loopback; yields its URL and the PEM of the CA that signed it."""
    with serve_tls(tmp_path, _Ok) as served:
        yield served


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the loader writes to, empty at the start."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


def test_the_ca_is_held_in_memory_and_no_file_is_left(tls_server: tuple[str, bytes], private_tmp: Path,
                                                       tmp_path: Path) -> None:
    url, ca_pem = tls_server
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=url, ca_pem=ca_pem, token="t0ken")
    configuration = load_configuration(kubeconfig)
    assert configuration.ssl_ca_cert is None
    assert configuration.ca_cert_data == ca_pem.decode()
    assert list(private_tmp.iterdir()) == []


def test_clients_verify_the_server_with_the_ca_in_memory(tls_server: tuple[str, bytes], private_tmp: Path,
                                                         tmp_path: Path) -> None:
    url, ca_pem = tls_server
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=url, ca_pem=ca_pem, token="t0ken")
    for _ in range(2):  # a second load in the same process writes and removes the file afresh
        assert KubeClient.from_kubeconfig(kubeconfig).status_of("/version") == 200
        assert quick_client(kubeconfig).status_of("/version") == 200
    assert list(private_tmp.iterdir()) == []


def test_a_client_made_after_requests_still_has_the_ca(tls_server: tuple[str, bytes], private_tmp: Path,
                                                      tmp_path: Path) -> None:
    """The loader's refresh hook runs before every request and copied its CA file's name back
    onto the configuration: the watch streams' client, made on the first watch, then looked for
    the removed file (SSLError: FileNotFoundError)."""
    url, ca_pem = tls_server
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=url, ca_pem=ca_pem, token="t0ken")
    kube = KubeClient.from_kubeconfig(kubeconfig)
    assert kube.status_of("/version") == 200
    assert kube.api.configuration.ssl_ca_cert is None
    assert KubeClient(k8s.ApiClient(kube.api.configuration)).status_of("/version") == 200


def test_a_file_another_loader_uses_is_left_alone(tls_server: tuple[str, bytes], private_tmp: Path,
                                                 tmp_path: Path) -> None:
    url, ca_pem = tls_server
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=url, ca_pem=ca_pem, token="t0ken")
    theirs = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=theirs)
    assert theirs.ssl_ca_cert is not None and Path(theirs.ssl_ca_cert).is_file()
    assert load_configuration(kubeconfig).ca_cert_data == ca_pem.decode()
    assert Path(theirs.ssl_ca_cert).is_file()
    assert KubeClient(k8s.ApiClient(theirs)).status_of("/version") == 200


def test_a_server_from_another_ca_is_refused(tls_server: tuple[str, bytes], private_tmp: Path,
                                             tmp_path: Path) -> None:
    url, _ = tls_server
    other = ensure_ca(tmp_path / "other-ca").cert_pem()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=url, ca_pem=other, token="t0ken")
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        quick_client(kubeconfig).status_of("/version")


def test_dvcr_token_reviews_and_the_uninstaller_keep_no_ca_file(tls_server: tuple[str, bytes], private_tmp: Path,
                                                               tmp_path: Path) -> None:
    """The other two clients made from a kubeconfig: DVCR's TokenReview and SubjectAccessReview
    client (a DVCR killed with SIGKILL left its CA file in /tmp) and `dvp uninstall`'s VM list."""
    url, ca_pem = tls_server
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=url, ca_pem=ca_pem, token="t0ken")
    auth = Authenticator(htpasswd=None, kubeconfig=kubeconfig)
    auth._ensure_api()
    assert auth._api is not None and auth._api.api_client.configuration.ca_cert_data == ca_pem.decode()
    assert uninstall_vms._api(kubeconfig).api.configuration.ca_cert_data == ca_pem.decode()
    assert list(private_tmp.iterdir()) == []


BROKEN_KUBECONFIGS = {
    "missing": None,
    "not-yaml": "clusters: [\n  token: s3cr3t-token-value\n",
    "not-a-kubeconfig": "a: b\n",
    "empty": "",
    "no-such-context": "apiVersion: v1\ncurrent-context: x\ncontexts: []\nclusters: []\nusers: []\n",
}


@pytest.mark.parametrize("case", sorted(BROKEN_KUBECONFIGS))
def test_a_broken_kubeconfig_is_an_error_naming_the_file_not_its_content(case: str, tmp_path: Path) -> None:
    """Both loaders (ours for `dvp v`, the official one behind every KubeClient) say which file and
    what is wrong, as KubeconfigError (the CLIs turn it into their error line, not a traceback),
    and never quote the file (a kubeconfig line holds a token)."""
    path = tmp_path / "kubeconfig"
    text = BROKEN_KUBECONFIGS[case]
    if text is not None:
        path.write_text(text)
    for load in (read_kubeconfig, load_configuration):
        with pytest.raises(KubeconfigError) as err:
            load(path)
        assert str(path) in str(err.value), err.value
        assert "s3cr3t" not in str(err.value), err.value


def test_dvp_node_and_dvp_v_report_a_broken_kubeconfig_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from installer.cli.main import cli

    for args in (["node", "cordon", "n1"], ["node", "drain", "n1"], ["v", "stop", "vm1"], ["v", "top"]):
        result = CliRunner().invoke(cli, [*args, "--kubeconfig", str(tmp_path / "none")])
        assert result.exit_code == 1, (args, result.output)
        assert f"Error: kubeconfig {tmp_path / 'none'}:" in result.output, (args, result.output)
        assert not isinstance(result.exception, KubeconfigError | FileNotFoundError), (args, result.exception)
