"""Real services the tests start and stop themselves (by PID): the API server, libvirtd, sshd, ..."""
