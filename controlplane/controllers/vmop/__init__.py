"""VirtualMachineOperation: Start, Stop, Restart (and the operations this platform refuses)."""
