"""The wizard's working copy of the install config: the YAML-shaped document the screens edit,
validated by exactly the code the unattended mode uses (`parse_config`).

Every screen writes its fields into `ConfigDraft.doc` (camelCase keys, as in the file) and asks
`issues()` for the problems under its own field paths, so errors shown inline are the
`ConfigIssue` messages of `installer.config` (pydantic errors through
`describe_pydantic_error`, then the cross-field rules). `build()` returns the `InstallConfig`
the review screen dumps and the install phases run. No UI code here: unit tests use it alone.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from installer.config.errors import ConfigInvalid, ConfigIssue
from installer.config.loader import parse_config
from installer.config.models import API_VERSION, KIND, InstallConfig

DEFAULT_VM_CIDR = "10.66.10.0/24"
DKP_ONLY = ("kubernetesVersion", "releaseChannel", "registry")


def default_document() -> dict[str, Any]:
    """An embedded install with no host yet: the user adds the master (`localhost` for this
    machine) — a pre-filled one would clash with the real master ("exactly one master")."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "target": "embedded",
        "hosts": [],
        "virtualization": {"virtualMachineCIDRs": [DEFAULT_VM_CIDR]},
        "checks": {"profile": "production"},
    }


def format_secret_ref(ref: Any) -> str:
    """`{fromEnv: X}` -> `env:X`, `{fromFile: P}` -> `file:P`: how a reference is typed."""
    if not isinstance(ref, dict):
        return ""
    if "fromEnv" in ref:
        return f"env:{ref['fromEnv']}"
    if "fromFile" in ref:
        return f"file:{ref['fromFile']}"
    return ""


def parse_secret_ref(text: str) -> dict[str, str] | None:
    """The inverse of `format_secret_ref`; raises ValueError naming the accepted forms. The
    value itself is never asked for: only where it can be read from."""
    text = text.strip()
    if not text:
        return None
    kind, sep, rest = text.partition(":")
    if sep and kind == "env" and rest.strip():
        return {"fromEnv": rest.strip()}
    if sep and kind == "file" and rest.strip():
        return {"fromFile": rest.strip()}
    raise ValueError("expected env:VARIABLE or file:PATH (a reference, never the secret itself)")


class ConfigDraft:
    """The document being edited, plus the validation of it."""

    def __init__(
        self,
        doc: dict[str, Any] | None = None,
        *,
        filename: str = "install.yaml",
        known_checks: Collection[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.doc: dict[str, Any] = copy.deepcopy(doc) if doc is not None else default_document()
        self.filename = filename
        self.known_checks = known_checks
        self.environ = environ
        self.load_error = ""

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> ConfigDraft:
        """Pre-fill from an existing file; an unreadable or non-mapping file starts from the
        defaults with `load_error` saying why (the wizard shows it)."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            draft = cls(filename=str(path), **kwargs)
            draft.load_error = f"{path}: cannot be used to pre-fill the wizard: {exc}"
            return draft
        if not isinstance(data, dict):
            draft = cls(filename=str(path), **kwargs)
            draft.load_error = f"{path}: expected a mapping (kind: InstallConfig); starting from defaults"
            return draft
        return cls(data, filename=str(path), **kwargs)

    # --- validation -----------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The document as it would be written (without the empty mappings editing leaves)."""
        doc: dict[str, Any] = _pruned(self.doc)
        return doc

    def text(self) -> str:
        return yaml.safe_dump(self.document(), sort_keys=False, default_flow_style=False)

    def validate(self) -> tuple[InstallConfig | None, list[ConfigIssue]]:
        try:
            config = parse_config(
                self.text(), self.filename, known_checks=self.known_checks, environ=self.environ
            )
        except ConfigInvalid as exc:
            return None, list(exc.issues)
        return config, []

    def issues(self, *prefixes: str) -> list[ConfigIssue]:
        """Problems whose field path is one of `prefixes` or below it (all when none given)."""
        _, found = self.validate()
        if not prefixes:
            return found
        return [i for i in found if any(_under(i.path, p) for p in prefixes)]

    def build(self) -> InstallConfig:
        """The validated config; raises `ConfigInvalid` with every issue."""
        config, found = self.validate()
        if config is None:
            raise ConfigInvalid(found)
        return config

    # --- fields the screens edit ----------------------------------------------------------

    @property
    def target(self) -> str:
        return str(self.doc.get("target", "embedded"))

    def set_target(self, target: str) -> None:
        self.doc["target"] = target
        if target != "dkp":
            cluster = self.doc.get("cluster")
            if isinstance(cluster, dict):
                for key in DKP_ONLY:
                    cluster.pop(key, None)
                if not cluster:
                    self.doc.pop("cluster")

    @property
    def profile(self) -> str:
        checks = self.doc.get("checks")
        return str(checks.get("profile", "production")) if isinstance(checks, dict) else "production"

    def set_profile(self, profile: str) -> None:
        self.section("checks")["profile"] = profile

    def section(self, name: str) -> dict[str, Any]:
        value = self.doc.get(name)
        if not isinstance(value, dict):
            value = self.doc[name] = {}
        return value

    @property
    def hosts(self) -> list[dict[str, Any]]:
        value = self.doc.get("hosts")
        if not isinstance(value, list):
            value = self.doc["hosts"] = []
        return value

    def put_host(self, index: int | None, host: dict[str, Any]) -> int:
        """Replace host `index`, or append when None; returns the index."""
        if index is None:
            self.hosts.append(host)
            return len(self.hosts) - 1
        self.hosts[index] = host
        return index

    def remove_host(self, index: int) -> None:
        del self.hosts[index]

    def skip_check(self, name: str) -> None:
        skip = self.section("checks").setdefault("skip", [])
        if name not in skip:
            skip.append(name)

    def set_field(self, path: tuple[str, ...], value: Any) -> None:
        """Set (or, for None / empty, remove) a nested field such as ("cluster", "podSubnetCIDR")."""
        node = self.doc
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if value is None or value == "" or value == []:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value

    def get_field(self, path: tuple[str, ...], default: Any = "") -> Any:
        node: Any = self.doc
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node


def _pruned(value: Any) -> Any:
    """The document without the empty mappings that editing leaves behind (`cluster: {}`)."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def host_label(host: Mapping[str, Any]) -> str:
    return str(host.get("name") or host.get("address") or "?")
