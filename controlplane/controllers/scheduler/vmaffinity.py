"""`virtualMachineAndPodAffinity` and `virtualMachineAndPodAntiAffinity`, as DVP defines them
(a Pod's podAffinity/podAntiAffinity renamed): terms select other VirtualMachines by labels,
in the VM's namespace unless `namespaces` and `namespaceSelector` (matched against the labels
of the other VM's Namespace; `{}`: every namespace) name others — the union of both, as for a
Pod — and a node belongs to a topology domain by its `topologyKey` label
(`kubernetes.io/hostname`: the node itself).

- required affinity: the node's domain must hold a matching VM — except for the first of a
  group (no VM matches anywhere and the VM matches its own term), as kube-scheduler allows;
- required anti-affinity: the node's domain must hold none; and, symmetrically, no VM already
  placed may have a required anti-affinity term that matches the incoming VM in that domain;
- preferred terms add (affinity) or subtract (anti-affinity) their weight per domain match.

`Placed` is what the scheduler knows of a node's VMs (placed and assumed), looked up by node
from an index, never by scanning every VM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from controlplane.controllers import scheduling

AFFINITY = "virtualMachineAndPodAffinity"
ANTI_AFFINITY = "virtualMachineAndPodAntiAffinity"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
AFFINITY_REFUSAL = "node(s) didn't match VM affinity rules"
ANTI_AFFINITY_REFUSAL = "node(s) didn't satisfy existing VMs anti-affinity rules"


@dataclass(frozen=True)
class Placed:
    """A VM on a node, as far as affinity cares: who it is, its labels, its own affinity."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    affinity: Mapping[str, Any]


def placed_of(vm: dict[str, Any]) -> Placed:
    meta = vm.get("metadata") or {}
    return Placed(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
                  labels=dict(meta.get("labels") or {}), affinity=dict((vm.get("spec") or {}).get("affinity") or {}))


NamespaceLabels = Callable[[str], Mapping[str, str]]
"""The labels of a Namespace by name ({} when it is not known)."""


def no_namespace_labels(_namespace: str) -> Mapping[str, str]:
    return {}


def _in_scope(term: Mapping[str, Any], owner_ns: str, other_ns: str, ns_labels: NamespaceLabels) -> bool:
    """Whether a VM in `other_ns` is in the namespaces `term` (of a VM in `owner_ns`) looks at:
    the union of `namespaces` and the namespaces `namespaceSelector` selects; neither given:
    the owner's namespace; an empty selector: every namespace."""
    namespaces = term.get("namespaces") or []
    ns_selector = term.get("namespaceSelector")
    if ns_selector is None and not namespaces:
        return other_ns == owner_ns
    if other_ns in namespaces:
        return True
    if ns_selector is None:
        return False
    return not ns_selector or scheduling.matches_selector(dict(ns_labels(other_ns)), ns_selector)


def _term_selects(term: Mapping[str, Any], owner_ns: str, other: Placed,
                  ns_labels: NamespaceLabels = no_namespace_labels) -> bool:
    """Whether `term` (of a VM in `owner_ns`) selects the VM `other`."""
    if not _in_scope(term, owner_ns, other.namespace, ns_labels):
        return False
    selector = term.get("labelSelector")
    if selector is None:
        return False  # a term without a labelSelector selects nothing (as a Pod's)
    return scheduling.matches_selector(dict(other.labels), selector) if selector else True


def _terms(affinity: Mapping[str, Any], kind: str, mode: str) -> list[dict[str, Any]]:
    terms: list[dict[str, Any]] = (affinity.get(kind) or {}).get(mode) or []
    return terms


def _domain(node: dict[str, Any], key: str) -> str | None:
    return scheduling.node_labels(node).get(key)


class Affinity:
    """The affinity view of one placement: the VM, the nodes and the VMs on each node."""

    def __init__(self, vm: Placed, nodes: list[dict[str, Any]], placed: Mapping[str, list[Placed]], *,
                 namespace_labels: NamespaceLabels = no_namespace_labels) -> None:
        self.vm = vm
        self.nodes = nodes
        self.placed = placed
        self.ns_labels = namespace_labels
        self._domains: dict[tuple[str, int, str], set[str]] = {}

    def _others(self, node: str) -> list[Placed]:
        return [p for p in self.placed.get(node, []) if (p.namespace, p.name) != (self.vm.namespace, self.vm.name)]

    def _matching_domains(self, term: dict[str, Any], owner_ns: str) -> set[str]:
        """Topology values of the nodes holding a VM that `term` selects."""
        key = term.get("topologyKey") or ""
        memo = (key, id(term), owner_ns)
        if memo not in self._domains:
            found = set()
            for node in self.nodes:
                value = _domain(node, key)
                others = self._others(node["metadata"]["name"])
                if value is not None and any(_term_selects(term, owner_ns, p, self.ns_labels) for p in others):
                    found.add(value)
            self._domains[memo] = found
        return self._domains[memo]

    def refusal(self, node: dict[str, Any]) -> str | None:
        """Why the VM's required terms (or a placed VM's required anti-affinity) keep it off `node`."""
        aff = self.vm.affinity
        for term in _terms(aff, AFFINITY, REQUIRED):
            value = _domain(node, term.get("topologyKey") or "")
            domains = self._matching_domains(term, self.vm.namespace)
            first_of_group = not domains and _term_selects(term, self.vm.namespace, self.vm, self.ns_labels)
            if not first_of_group and (value is None or value not in domains):
                return AFFINITY_REFUSAL
        for term in _terms(aff, ANTI_AFFINITY, REQUIRED):
            value = _domain(node, term.get("topologyKey") or "")
            if value is not None and value in self._matching_domains(term, self.vm.namespace):
                return AFFINITY_REFUSAL
        return self._existing_anti_affinity(node)

    def _existing_anti_affinity(self, node: dict[str, Any]) -> str | None:
        for other_node in self.nodes:
            for other in self._others(other_node["metadata"]["name"]):
                for term in _terms(other.affinity, ANTI_AFFINITY, REQUIRED):
                    key = term.get("topologyKey") or ""
                    value = _domain(node, key)
                    if (value is not None and value == _domain(other_node, key)
                            and _term_selects(term, other.namespace, self.vm, self.ns_labels)):
                        return ANTI_AFFINITY_REFUSAL
        return None

    def score(self, node: dict[str, Any]) -> int:
        """Preferred terms: + weight per affinity domain match, - weight per anti-affinity match."""
        total = 0
        for sign, kind in ((1, AFFINITY), (-1, ANTI_AFFINITY)):
            for pref in _terms(self.vm.affinity, kind, PREFERRED):
                term = pref.get("virtualMachineAndPodAffinityTerm") or {}  # one name for both kinds (DVP's CRD)
                value = _domain(node, term.get("topologyKey") or "")
                if value is not None and value in self._matching_domains(term, self.vm.namespace):
                    total += sign * int(pref.get("weight") or 0)
        return total

    @property
    def has_terms(self) -> bool:
        return bool(self.vm.affinity.get(AFFINITY) or self.vm.affinity.get(ANTI_AFFINITY)) or any(
            _terms(p.affinity, ANTI_AFFINITY, REQUIRED) for ps in self.placed.values() for p in ps)
