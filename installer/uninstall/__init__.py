"""`dvp uninstall`: take the platform off its hosts again, the way `kubeadm reset` or k3s's
uninstall script do, so a host passes the preflight's `leftovers.*` checks afterwards.

Flow (installer/uninstall/run.py): find the hosts (the install config, or the config the last
run in the state directory recorded) → connect over SSH → ask the API which VirtualMachines
exist (refused while any do, unless `--delete-vms`: then they are deleted through the API and
awaited) → per host, one root shell script (installer/uninstall/hostscript.py) stops the
services and the VM network's dnsmasq, deletes the bridge, and removes every path
`installer/hostlayout.py` and the playbooks write. `--dry-run` runs the same script in listing
mode; `--keep-data` keeps the datastore and the VM volumes for a later install to adopt.
"""
