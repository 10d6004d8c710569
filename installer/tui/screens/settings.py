"""Step 4: networks and storage — virtualMachineCIDRs, DVCR size, the VM storage directory,
pod and service networks; for `dkp` also the Kubernetes version, release channel and the
registry DKP is installed from (its password only as a reference).

Inputs start from the config being edited or the model's defaults; ctrl+n writes them into
the draft and shows every problem under its field (`parse_config`'s messages).
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Select

from installer.config.models import ClusterSettings, VirtualizationSettings
from installer.tui.base import WizardScreen, describe_issues, field
from installer.tui.draft import format_secret_ref, parse_secret_ref

CHANNELS = ("Alpha", "Beta", "EarlyAccess", "Stable", "RockSolid")

# field path -> input id (issues under a path land under that input)
FIELDS = {
    "virtualization.virtualMachineCIDRs": "vm-cidrs",
    "virtualization.dvcrStorageSize": "dvcr-size",
    "virtualization.vmStorageDirectory": "vm-dir",
    "cluster.podSubnetCIDR": "pod-cidr",
    "cluster.serviceSubnetCIDR": "service-cidr",
    "cluster.kubernetesVersion": "kube-version",
    "cluster.releaseChannel": "channel",
    "cluster.registry.address": "registry",
    "cluster.registry.username": "registry-user",
    "cluster.registry.password": "registry-password",
    "cluster.registry": "registry",
}


def _default(model: Any, name: str) -> str:
    value = model.model_fields[name].get_default(call_default_factory=True)
    return str(value)


class SettingsScreen(WizardScreen):
    HELP = "Networks and storage. tab/shift+tab: move between fields  ctrl+n: review"

    def compose_body(self) -> ComposeResult:
        d = self.draft
        cidrs = d.get_field(("virtualization", "virtualMachineCIDRs"), [])
        yield Label("Virtualization", classes="section")
        yield field("VM networks (virtualMachineCIDRs, comma-separated)",
                    Input(", ".join(map(str, cidrs)) if isinstance(cidrs, list) else str(cidrs), id="vm-cidrs"))
        yield field("DVCR storage size (registry of VM images)",
                    Input(str(d.get_field(("virtualization", "dvcrStorageSize"),
                                          _default(VirtualizationSettings, "dvcr_storage_size"))), id="dvcr-size"))
        yield field("VM storage directory (on every host)",
                    Input(str(d.get_field(("virtualization", "vmStorageDirectory"),
                                          _default(VirtualizationSettings, "vm_storage_directory"))), id="vm-dir"))
        yield Label("Cluster", classes="section")
        yield field("Pod network (podSubnetCIDR)",
                    Input(str(d.get_field(("cluster", "podSubnetCIDR"), _default(ClusterSettings, "pod_subnet_cidr"))),
                          id="pod-cidr"))
        yield field("Service network (serviceSubnetCIDR)",
                    Input(str(d.get_field(("cluster", "serviceSubnetCIDR"),
                                          _default(ClusterSettings, "service_subnet_cidr"))), id="service-cidr"))
        channel = d.get_field(("cluster", "releaseChannel"), "Stable")
        with Vertical(id="dkp-settings"):
            yield Label("Deckhouse Kubernetes Platform (target dkp)", classes="section")
            yield field('Kubernetes version ("1.29" or Automatic)',
                        Input(str(d.get_field(("cluster", "kubernetesVersion"), "Automatic")), id="kube-version"))
            yield field("Release channel", Select([(c, c) for c in CHANNELS], allow_blank=False,
                                                  value=channel if channel in CHANNELS else "Stable", id="channel"))
            yield field("Registry (e.g. registry.deckhouse.io/deckhouse/ce; blank: DKP's default)",
                        Input(str(d.get_field(("cluster", "registry", "address"))), id="registry"))
            yield field("Registry user", Input(str(d.get_field(("cluster", "registry", "username"))),
                                               id="registry-user"))
            yield field("Registry password", Input(format_secret_ref(d.get_field(("cluster", "registry", "password"), None)),
                                                   id="registry-password"),
                        hint="a reference, not the secret: env:VARIABLE or file:PATH (blank: none)")

    def on_mount(self) -> None:
        self.query_one("#dkp-settings").display = self.draft.target == "dkp"
        self.query_one("#vm-cidrs", Input).focus()

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def apply(self) -> dict[str, str]:
        """Write the inputs into the draft; returns errors found before validation."""
        d, errors = self.draft, dict[str, str]()
        cidrs = [c.strip() for c in self._value("vm-cidrs").split(",") if c.strip()]
        d.set_field(("virtualization", "virtualMachineCIDRs"), cidrs or None)
        if not cidrs:
            d.section("virtualization")["virtualMachineCIDRs"] = []  # "needs at least 1 item"
        d.set_field(("virtualization", "dvcrStorageSize"), self._value("dvcr-size"))
        d.set_field(("virtualization", "vmStorageDirectory"), self._value("vm-dir"))
        d.set_field(("cluster", "podSubnetCIDR"), self._value("pod-cidr"))
        d.set_field(("cluster", "serviceSubnetCIDR"), self._value("service-cidr"))
        if d.target != "dkp":
            return errors
        d.set_field(("cluster", "kubernetesVersion"), self._value("kube-version"))
        d.set_field(("cluster", "releaseChannel"), str(self.query_one("#channel", Select).value))
        if not self._value("registry"):
            d.set_field(("cluster", "registry"), None)
            return errors
        registry: dict[str, Any] = {"address": self._value("registry")}
        if self._value("registry-user"):
            registry["username"] = self._value("registry-user")
        try:
            ref = parse_secret_ref(self._value("registry-password"))
        except ValueError as exc:
            errors["registry-password"] = str(exc)
            ref = None
        if ref is not None:
            registry["password"] = ref
        old = d.get_field(("cluster", "registry"), {})
        if isinstance(old, dict) and "caFile" in old:
            registry["caFile"] = old["caFile"]
        d.set_field(("cluster", "registry"), registry)
        return errors

    def action_next(self) -> None:
        errors = self.apply()
        issues = self.draft.issues("cluster", "virtualization")
        rest = self.show_issues(issues, FIELDS)
        for widget_id, message in errors.items():
            self.query_one(f"#{widget_id}-error").update(message)  # type: ignore[attr-defined]
        self.set_screen_error(describe_issues(rest))
        if issues or errors:
            return
        from installer.tui.screens.review import ReviewScreen

        self.app.push_screen(ReviewScreen())
