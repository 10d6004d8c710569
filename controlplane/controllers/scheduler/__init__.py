"""The VM scheduler: which node runs a VirtualMachine, decided the way kube-scheduler decides
for a Pod and DVP for its virt-launcher Pod.

- `nodefilters` — per-node predicates (Ready and healthy, not cordoned, taints tolerated,
  `nodeSelector`, required node affinity) and the preferred node affinity score;
- `vmaffinity` — `virtualMachineAndPodAffinity` / `virtualMachineAndPodAntiAffinity` over the
  VMs already placed (required and preferred, any `topologyKey`);
- `assumed` — placements decided but not yet seen in the cache, so that VMs placed at the same
  instant never over-commit a node;
- `decide` — filters, then capacity, then scores (least allocated); the message of a VM that
  fits nowhere says, per reason, how many nodes refused it ("2 Insufficient memory").
"""
