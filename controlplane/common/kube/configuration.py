"""Loading a kubeconfig into the official client's `Configuration` without leaving a file behind.

The official loader writes a kubeconfig's `certificate-authority-data` to a file of its own in
the temporary directory and removes it from an `atexit` hook. A component process that is
killed (the supervisor's SIGKILL after its stop timeout, the stop bound, a crash) never runs
that hook, so every such restart left a CA file in /tmp. Here the CA goes into the
configuration's `ca_cert_data` (urllib3 takes it in memory) and the file is removed at once.

Two details of the loader matter. Its token refresh hook, run before every request, copies the
loader's own `ssl_ca_cert` onto the configuration again: the loader forgets the file too, or a
client made later from the configuration (the watch streams' own pool) would look for it. And
it caches its files by content for the whole process: a file that was in the cache before this
load may be in use by another client, so only a file this load wrote is removed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import yaml
from kubernetes import client as k8s
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from controlplane.common.kubeconfig import KubeconfigError, unreadable

_LOCK = threading.Lock()
"""Loads in this process one at a time: the loader's file cache is shared."""


def load_configuration(path: Path | str) -> k8s.Configuration:
    """The kubeconfig's current context as a `Configuration`, its CA held in memory;
    KubeconfigError naming the file and what is wrong with it."""
    configuration = k8s.Configuration()
    with _LOCK:
        cache: dict[str, str] = kube_config._temp_files  # the loader's content -> file name
        cached_before = set(cache)
        try:
            loader = kube_config._get_kube_config_loader(filename=str(path), persist_config=True)  # type: ignore[no-untyped-call]
            loader.load_and_set(configuration)
        except ConfigException as exc:  # its text names the file and the missing key, not values
            raise KubeconfigError(f"kubeconfig {path}: {exc}") from None
        except (OSError, yaml.YAMLError) as exc:
            raise unreadable(path, exc) from None
        ca_file = configuration.ssl_ca_cert
        content = next((c for c, name in cache.items() if name == ca_file), None)
        if content is None or ca_file is None:
            return configuration  # a CA file named by the kubeconfig itself, or none
        configuration.ca_cert_data = Path(ca_file).read_text()
        configuration.ssl_ca_cert = loader.ssl_ca_cert = None
        if content not in cached_before:
            del cache[content]
            Path(ca_file).unlink(missing_ok=True)
    return configuration
