"""Scalar types of the install config with the error messages users see.

Each validator raises `PydanticCustomError` with a sentence that names the value and says what
is expected, so `dvp config validate` can print it after the field path unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_KUBE_VERSION = re.compile(r"^(Automatic|1\.[0-9]{2})$")


def is_rfc1123_label(value: str) -> bool:
    """A DNS label as Kubernetes node names need it: lower case, digits, '-', 1-63 chars."""
    return bool(_LABEL.match(value))


def is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_host_name(value: str) -> bool:
    """An RFC 1123 host name; a name of digits and dots only must be an IPv4 address instead."""
    if not value or len(value) > 253:
        return False
    labels = value.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        return False
    return all(_HOST_LABEL.match(label) for label in labels)


def _address(value: str) -> str:
    if is_ip_address(value) or is_host_name(value):
        return value
    raise PydanticCustomError(
        "address", '"{value}" is not an IP address or host name', {"value": value}
    )


def _label(value: str) -> str:
    if is_rfc1123_label(value):
        return value
    raise PydanticCustomError(
        "label",
        '"{value}" is not a valid host name (RFC 1123 label: lower-case letters, digits and "-", '
        "at most 63 characters, starting and ending with a letter or digit)",
        {"value": value},
    )


def _domain(value: str) -> str:
    if is_host_name(value) and value == value.lower():
        return value
    raise PydanticCustomError(
        "domain", '"{value}" is not a valid DNS domain (e.g. cluster.local)', {"value": value}
    )


def _network(value: object) -> IPNetwork:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("cidr", "expected a CIDR such as 10.0.0.0/24")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            net = ipaddress.ip_network(value, strict=False)
            raise PydanticCustomError(
                "cidr",
                '"{value}" has host bits set; did you mean {net}?',
                {"value": value, "net": str(net)},
            ) from None
        raise PydanticCustomError(
            "cidr", '"{value}" is not a CIDR such as 10.0.0.0/24', {"value": value}
        ) from None


def _quantity(value: str) -> str:
    if _QUANTITY.match(value):
        return value
    raise PydanticCustomError(
        "quantity", '"{value}" is not a size such as 50Gi or 500Mi', {"value": value}
    )


def _abs_path(value: Path) -> Path:
    if value.is_absolute():
        return value
    raise PydanticCustomError(
        "abs_path", '"{value}" is not an absolute path', {"value": str(value)}
    )


def _user_path(value: Path) -> Path:
    try:
        return value.expanduser()
    except RuntimeError:  # `~name/...` for a user this machine does not have
        raise PydanticCustomError(
            "user_path", '"{value}" starts with ~ but names no user of this machine', {"value": str(value)}
        ) from None


def _kube_version(value: str) -> str:
    if _KUBE_VERSION.match(value):
        return value
    raise PydanticCustomError(
        "kube_version",
        '"{value}" is not a Kubernetes version such as "1.29" (quoted) or Automatic',
        {"value": value},
    )


def quantity_bytes(value: str) -> int:
    """Bytes of a Kubernetes quantity ("50Gi" -> 53687091200)."""
    match = re.match(r"^([0-9.]+)([A-Za-z]*)$", value)
    assert match, value
    number, suffix = float(match.group(1)), match.group(2)
    binary = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
    decimal = {"k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
    if suffix in binary:
        return int(number * 1024 ** binary[suffix])
    if suffix in decimal:
        return int(number * 1000 ** decimal[suffix])
    return int(number)


Address = Annotated[str, AfterValidator(_address)]
HostLabel = Annotated[str, AfterValidator(_label)]
Domain = Annotated[str, AfterValidator(_domain)]
CIDR = Annotated[IPNetwork, PlainValidator(_network), PlainSerializer(str, return_type=str)]
Quantity = Annotated[str, AfterValidator(_quantity)]
AbsPath = Annotated[Path, AfterValidator(_abs_path)]
UserPath = Annotated[Path, AfterValidator(_user_path)]
KubeVersion = Annotated[str, AfterValidator(_kube_version)]
