"""VirtualMachineBlockDeviceAttachment: hot-plugging a disk or image into a running VM."""
