"""VirtualMachineClass: which nodes a class can place VMs on, and the sizing policies VMs of
the class must follow (enforced by the VM controller through `sizing.check`)."""
