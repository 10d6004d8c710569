"""IPAM: VirtualMachineIPAddress (a VM's address claim) and VirtualMachineIPAddressLease
(one cluster-wide lease per address) over the platform's `virtualMachineCIDRs`."""
