"""ClusterVirtualImage and VirtualImage: VM images imported into DVCR."""
