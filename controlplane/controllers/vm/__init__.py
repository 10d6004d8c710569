"""VirtualMachine: from a DVP VirtualMachine to an InternalVirtualMachineInstance on a node,
and the instance's status back into the VM's phase and conditions."""
