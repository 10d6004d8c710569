"""The `dvp` installer: command line, install config, SSH preflight checks, Ansible bootstrap, upgrade.

The installer never imports controller internals; it reaches the control plane only through
its commands (registered lazily in `installer.cli.main`) and the Kubernetes API.
"""
