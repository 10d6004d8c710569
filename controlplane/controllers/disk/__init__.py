"""VirtualDisk: a persistent disk of a VM, provisioned as a volume on the node of its first consumer."""
