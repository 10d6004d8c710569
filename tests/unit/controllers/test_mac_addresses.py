"""MAC address IPAM: the arithmetic (lease names, prefixes, DVP's OUI from a cluster UID,
picking a free address), a VirtualMachineMACAddress claiming its lease (automatic and static,
one address never given to two claims, the loser told who holds it), and its phases."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from controlplane.api import condition_builder as conditions
from controlplane.api.resources import VIRTUAL_MACHINE_MAC_ADDRESS_LEASES as LEASES
from controlplane.api.resources import VIRTUAL_MACHINE_MAC_ADDRESSES as VMMACS
from controlplane.api.resources import VIRTUAL_MACHINES
from controlplane.api.v1alpha2 import VirtualMachineMACAddressPhase as Phase
from controlplane.api.v1alpha2 import VMMACCondition as C
from controlplane.common.kube.client import KubeError, Resource
from controlplane.controllers.ipam import mac_allocator as allocator
from controlplane.controllers.ipam import vmmac
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.state import State
from controlplane.controllers.settings import PlatformSettings
from tests.unit.controllers.recorders import CollectedEvents


def test_lease_names_round_trip() -> None:
    assert allocator.lease_name("02:D8:76:0a:0b:0c") == "mac-02-d8-76-0a-0b-0c"
    assert allocator.address_of_lease("mac-02-d8-76-0a-0b-0c") == "02:d8:76:0a:0b:0c"
    assert allocator.address_of_lease("ip-10-66-0-5") is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff"), ("AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"),
    ("aa:bb:cc:dd:ee", None), ("zz:bb:cc:dd:ee:ff", None), ("", None)], ids=str)
def test_normal_form(raw: str, expected: str | None) -> None:
    assert allocator.normal(raw) == expected


def test_prefix_must_be_three_octets() -> None:
    assert allocator.oui("02D876") == "02:d8:76"
    with pytest.raises(ValueError, match="three octets"):
        allocator.oui("02:d8")


@pytest.mark.parametrize(("uid", "expected"), [
    ("12345678-1234-1234-1234-123456789abc", "12:34:56"),   # '2' at once: starts the OUI
    ("13579bdf-1357-9bdf-1357-9bdf13579bdf", "12:57:9b"),   # none of 2/6/a/e: first bytes, 2 forced
    ("1111111a-1111-1111-1111-111111111111", "1a:11:11"),
], ids=["first-byte", "forced", "later-byte"])
def test_oui_of_cluster_uid_follows_dvp(uid: str, expected: str) -> None:
    oui = allocator.oui_of_cluster(uid)
    assert oui == expected
    assert oui[1] in "26ae", "locally administered, unicast"


def test_pick_stays_under_the_prefix_and_skips_taken() -> None:
    taken = {f"02:d8:76:00:00:{i:02x}" for i in range(255)}
    got = allocator.pick("02:d8:76", taken.__contains__, rng=random.Random(1))
    assert got is not None and got.startswith("02:d8:76:") and got not in taken
    # random draws all miss: the lowest free address is found by the scan
    assert allocator.pick("02:d8:76", lambda a: a < "02:d8:76:00:01:00", tries=0) == "02:d8:76:00:01:00"


class Store:
    """Objects by (resource, namespace, name), read as informers and written as the API server
    would: create refuses an existing name (the lease is the lock)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def cache(self, resource: Resource) -> Any:
        store = self

        class Cache:
            def get(self, namespace: str, name: str) -> dict[str, Any] | None:
                return store.objects.get((resource.plural, namespace, name))

            def add_index(self, *_: Any) -> None:
                return None

            def by_index(self, *_: Any) -> list[dict[str, Any]]:
                return []
        return Cache()

    def create(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        key = (resource.plural, body["metadata"].get("namespace", ""), body["metadata"]["name"])
        if key in self.objects:
            raise KubeError(409, "AlreadyExists", f"{key[2]} already exists")
        self.objects[key] = copy.deepcopy(body)
        return body

    def get_or_none(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.objects.get((resource.plural, namespace or "", name))

    def delete_if_exists(self, resource: Resource, name: str, namespace: str | None = None) -> bool:
        return self.objects.pop((resource.plural, namespace or "", name), None) is not None


def _ctx(store: Store) -> Context:
    ctx = Context(kube=store, settings=PlatformSettings(), recorder=CollectedEvents())
    for res in (LEASES, VMMACS, VIRTUAL_MACHINES):
        ctx.informers[res] = store.cache(res)
    return ctx


def _reconcile(ctx: Context, name: str, address: str = "", status: dict[str, Any] | None = None) -> State:
    obj = {"apiVersion": VMMACS.api_version, "kind": VMMACS.kind,
           "metadata": {"name": name, "namespace": "default", "generation": 1, "uid": name},
           "spec": {"address": address} if address else {}, "status": status or {}}
    state = State(ctx, VMMACS, obj)
    for handler in (vmmac.BindingHandler(), vmmac.AttachmentHandler(), vmmac.PhaseHandler()):
        handler.handle(state)
    return state


def test_automatic_mac_gets_a_lease_under_the_prefix() -> None:
    store = Store()
    state = _reconcile(_ctx(store), "auto")
    address = state.status["address"]
    assert address.startswith(PlatformSettings().mac_address_prefix + ":")
    lease = store.objects[(LEASES.plural, "", allocator.lease_name(address))]
    assert lease["spec"]["virtualMachineMACAddressRef"] == {"name": "auto", "namespace": "default"}
    assert state.status["phase"] == Phase.BOUND


def test_static_mac_is_honoured_and_a_duplicate_is_refused() -> None:
    store = Store()
    ctx = _ctx(store)
    first = _reconcile(ctx, "first", "AA:BB:CC:00:00:01")
    assert first.status["address"] == "aa:bb:cc:00:00:01" and first.status["phase"] == Phase.BOUND
    second = _reconcile(ctx, "second", "aa-bb-cc-00-00-01")
    assert "address" not in second.status and second.status["phase"] == Phase.PENDING
    bound = conditions.get(second.status, C.Type.BOUND) or {}
    assert bound["status"] == "False" and bound["reason"] == C.BoundReason.LEASE_ALREADY_EXISTS
    assert "default/first" in bound["message"] and "spec.address" in bound["message"]
    # the holder reconciles again: still its own
    assert _reconcile(ctx, "first", "aa:bb:cc:00:00:01").status["phase"] == Phase.BOUND


def test_automatic_mac_never_draws_a_leased_address() -> None:
    store = Store()
    ctx = _ctx(store)
    ctx.settings = PlatformSettings(mac_address_prefix="02:00:00")
    addresses = {_reconcile(ctx, f"m{i}").status["address"] for i in range(50)}
    assert len(addresses) == 50


def test_deleting_the_claim_frees_its_lease() -> None:
    store = Store()
    ctx = _ctx(store)
    address = _reconcile(ctx, "gone", "aa:bb:cc:00:00:02").status["address"]
    vmmac.release(ctx, address, namespace="default", name="other")  # not its holder: kept
    assert (LEASES.plural, "", allocator.lease_name(address)) in store.objects
    vmmac.release(ctx, address, namespace="default", name="gone")
    assert (LEASES.plural, "", allocator.lease_name(address)) not in store.objects


@pytest.mark.parametrize(("bound", "attached", "phase"), [
    (None, None, Phase.PENDING), (False, None, Phase.PENDING), (False, True, Phase.PENDING),
    (True, False, Phase.BOUND), (True, None, Phase.BOUND), (True, True, Phase.ATTACHED),
], ids=["unknown", "unbound", "unbound-but-used", "bound", "bound-unknown-use", "attached"])
def test_phase_table(bound: bool | None, attached: bool | None, phase: Phase) -> None:
    status: dict[str, Any] = {}
    if bound is not None:
        conditions.set_condition(status, C.Type.BOUND, bound, C.BoundReason.BOUND, "")
    if attached is not None:
        conditions.set_condition(status, C.Type.ATTACHED, attached, C.AttachedReason.ATTACHED, "")
    assert vmmac.phase_of(status) == phase
