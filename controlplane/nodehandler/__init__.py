"""The per-host agent (`dvp agent`): node registration, libvirt domains, disks, cloud-init,
console/VNC streams. See docs/development.md for where it sits among the layers."""
