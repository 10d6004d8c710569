"""The controller manager: shared informers, one controller per kind, leader election.

Informers start at once (caches warm); the reconcilers run only while this process holds
the Lease `d8-virtualization/dvp-controllers`, so two servers never both act. Runs inside
`dvp server` (embedded target) and as `dvp controller --kubeconfig` (dkp target)."""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable

from controlplane.api.resources import CLUSTER_VIRTUAL_IMAGES, VIRTUAL_IMAGES
from controlplane.common.clusterversions import VERSION_ANNOTATION
from controlplane.common.kube.client import NAMESPACES, KubeClient, KubeError
from controlplane.common.kube.controller import Controller
from controlplane.common.kube.events import BackgroundEventRecorder
from controlplane.common.kube.leader import LeaderElector
from controlplane.common.kube.settings import DEFAULT, RuntimeSettings
from controlplane.common.version import __version__
from controlplane.controllers import metrics
from controlplane.controllers.disk import controller as disk
from controlplane.controllers.image.controller import build_for as image_controller
from controlplane.controllers.ipam import lease as ipam_lease
from controlplane.controllers.ipam import mac_lease, vmip, vmmac
from controlplane.controllers.nodelifecycle import controller as nodelifecycle
from controlplane.controllers.runtime.context import Context
from controlplane.controllers.runtime.reconciler import Reconciler
from controlplane.controllers.runtime.watchers import Watch, connect
from controlplane.controllers.settings import PlatformSettings
from controlplane.controllers.snapshot import vdsnapshot, vmsnapshot, vmsop
from controlplane.controllers.usb import nodeusb, usbdevice
from controlplane.controllers.vm import controller as vm
from controlplane.controllers.vmbda import controller as vmbda
from controlplane.controllers.vmclass import controller as vmclass
from controlplane.controllers.vmop import controller as vmop
from controlplane.controllers.vmpool import controller as vmpool

log = logging.getLogger(__name__)

Builder = Callable[[Context], tuple[Reconciler, list[Watch]]]
BUILDERS: dict[str, Builder] = {
    "vmclass": vmclass.build,
    "vmip": vmip.build,
    "vmiplease": ipam_lease.build,
    "vmmac": vmmac.build,
    "vmmaclease": mac_lease.build,
    "cvi": image_controller(CLUSTER_VIRTUAL_IMAGES),
    "vi": image_controller(VIRTUAL_IMAGES),
    "vd": disk.build,
    "vm": vm.build,
    "vmop": vmop.build,
    "vmbda": vmbda.build,
    "nodelifecycle": nodelifecycle.build,
    "vdsnapshot": vdsnapshot.build,
    "vmsnapshot": vmsnapshot.build,
    "vmsop": vmsop.build,
    "vmpool": vmpool.build,
    "nodeusb": nodeusb.build,
    "usbdevice": usbdevice.build,
}
LEASE_NAME = "dvp-controllers"
START_PATH_WORKERS = 8
"""Workers of each kind on a VirtualMachine's way to Running (its own cycles, its address and MAC
claims and their leases); every other kind keeps the manager's default. A cycle of these spends
most of its time waiting for the API server's writes, whose commits are grouped: with two workers,
30 VMs applied at once queued behind each other (bench/e2e --hosts 3: the address of the median
VM was Bound 21 s after the apply). Each key is still reconciled by one worker at a time, and a
placement and its assumption are taken under one lock (scheduler/assumed.py)."""
WORKERS = {name: START_PATH_WORKERS for name in ("vm", "vmip", "vmiplease", "vmmac", "vmmaclease")}


class Manager:
    def __init__(self, kube: KubeClient, settings: PlatformSettings, *, runtime: RuntimeSettings = DEFAULT,
                 identity: str | None = None, workers: int = 2) -> None:
        # events are written off the reconcile path: a phase change never waits for its event
        recorder = BackgroundEventRecorder(kube, "dvp-controllers", host=socket.gethostname(),
                                           delay=runtime.event_delay)
        self.ctx = Context(kube=kube, settings=settings, recorder=recorder, runtime=runtime)
        self.identity = identity or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        self.workers = workers
        self.controllers: dict[str, Controller] = {}
        self.leading = threading.Event()
        self._lock = threading.Lock()
        self._elector: LeaderElector | None = None
        self._reconcilers = {name: build(self.ctx) for name, build in BUILDERS.items()}
        for name, (reconciler, watches) in self._reconcilers.items():
            forward = _Forward(self, name)
            self.ctx.enqueuers[reconciler.resource] = forward.enqueue
            connect(self.ctx, forward, watches, own=reconciler.resource, echo=reconciler.echo)  # type: ignore[arg-type]
        metrics.install(self.ctx)

    def workers_of(self, name: str) -> int:
        """Worker threads of controller `name`: at least the manager's default."""
        return max(self.workers, WORKERS.get(name, 0))

    def _ensure_namespace(self) -> None:
        try:
            self.ctx.kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": self.ctx.settings.namespace}})
        except KubeError as exc:
            if not exc.already_exists:
                raise

    def start(self, *, sync_timeout: float = 60) -> None:
        self._ensure_namespace()
        for inf in self.ctx.informers.values():
            inf.start()
        for resource, inf in self.ctx.informers.items():
            if not inf.wait_synced(sync_timeout):
                raise RuntimeError(f"cache of {resource.plural} did not sync within {sync_timeout:.0f}s")
        self.ctx.started = True
        self._elector = LeaderElector(self.ctx.kube, name=LEASE_NAME, namespace=self.ctx.settings.namespace,
                                      identity=self.identity, on_started=self._lead, on_lost=self._follow,
                                      settings=self.ctx.runtime,
                                      annotations={VERSION_ANNOTATION: __version__})
        self._elector.start()

    def _lead(self) -> None:
        with self._lock:
            # leading first: an event the informers deliver from here on reaches a controller
            # once it is registered, and one delivered before that is in the cache listed below
            self.leading.set()
            vmclass.ensure_generic(self.ctx)
            for name, (reconciler, _watches) in self._reconcilers.items():
                ctl = Controller(name, reconciler, workers=self.workers_of(name), settings=self.ctx.runtime)
                self.controllers[name] = ctl
                ctl.start()
                for obj in self.ctx.informer(reconciler.resource).list():
                    ctl.enqueue((obj["metadata"].get("namespace") or "", obj["metadata"]["name"]))

    def _follow(self) -> None:
        with self._lock:
            self.leading.clear()
            for ctl in self.controllers.values():
                ctl.stop()

    def stop(self) -> None:
        if self._elector:
            self._elector.stop()
        self._follow()
        if self._elector:
            self._elector.release()
        for inf in self.ctx.informers.values():
            inf.stop()


class _Forward:
    """Routes watch events to whichever Controller instance currently runs a kind."""

    def __init__(self, manager: Manager, name: str) -> None:
        self.manager, self.name = manager, name

    def enqueue(self, key: object) -> None:
        ctl = self.manager.controllers.get(self.name)
        if ctl is not None and self.manager.leading.is_set():
            ctl.enqueue(key)
