"""The node handler: the per-host agent that runs VMs with libvirt + QEMU."""
