"""The install config: one YAML document (`kind: InstallConfig`) describing the target, the hosts,
how to reach them over SSH, and the cluster, virtualization and check settings.

First stop of every installer flow: `dvp config validate`, `dvp check` and (issue 7) `dvp install`
all call `load_config()`; the TUI builds the same `InstallConfig` and writes it with `dump_config()`.
"""

from installer.config.errors import ConfigInvalid, ConfigIssue
from installer.config.loader import dump_config, load_config, parse_config
from installer.config.models import (
    BastionSettings,
    CheckSettings,
    ClusterSettings,
    Host,
    HostSSH,
    InstallConfig,
    SSHSettings,
    VirtualizationSettings,
)
from installer.config.secrets import Secret, SecretRef

__all__ = [
    "BastionSettings",
    "CheckSettings",
    "ClusterSettings",
    "ConfigInvalid",
    "ConfigIssue",
    "Host",
    "HostSSH",
    "InstallConfig",
    "SSHSettings",
    "Secret",
    "SecretRef",
    "VirtualizationSettings",
    "dump_config",
    "load_config",
    "parse_config",
]
