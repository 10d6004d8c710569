"""Snapshot kinds: VirtualDiskSnapshot (a copy of a disk's volume on its node), VirtualMachineSnapshot
(one VirtualDiskSnapshot per disk plus the VM's manifests in a Secret), VirtualMachineSnapshotOperation
and the clone plan it shares with VMOP Clone (a new VM from a snapshot)."""
