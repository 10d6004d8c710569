"""How Python field names map to the install config's YAML keys (camelCase, with the
Kubernetes/DKP spelling of acronyms: `podSubnetCIDR`, `virtualMachineCIDRs`)."""

from __future__ import annotations

from pydantic.alias_generators import to_camel


def config_alias(field_name: str) -> str:
    alias = to_camel(field_name)
    return alias.replace("Cidrs", "CIDRs").replace("Cidr", "CIDR")
