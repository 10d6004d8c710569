"""VirtualMachinePool: a group of identical VMs kept at spec.replicas (scaled with the
`scale` subresource); `plan` decides, `controller` acts and reports."""
