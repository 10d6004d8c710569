"""The flags `dvp server` and `dvp controller` share: the platform settings the controllers read,
defined once so both commands name, default and explain them alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])

_OPTIONS = [
    click.option("--vm-cidr", "vm_cidrs", multiple=True, default=["10.66.0.0/16"], show_default=True,
                 help="virtualMachineCIDRs: subnets VM addresses come from (repeatable)."),
    click.option("--vm-ip-hold", default=600.0, show_default=True, type=click.FloatRange(min=0),
                 help="Seconds a released VM address stays reserved for its namespace."),
    click.option("--upload-wait", default=900.0, show_default=True, type=click.FloatRange(min=1),
                 help="Seconds an image upload URL waits for the upload to start."),
    click.option("--node-grace", default=40.0, show_default=True, type=click.FloatRange(min=1),
                 help="Seconds a node's Lease may go unrenewed before the node is Ready=Unknown (lost)."),
    click.option("--operation-ttl", default=86400.0, show_default=True, type=click.FloatRange(min=1),
                 help="Seconds after its creation a finished VirtualMachineOperation or "
                      "VirtualMachineSnapshotOperation is deleted (DVP's 24 h); of the younger ones, the newest "
                      "10 of each VM (snapshot) are kept."),
    click.option("--mac-prefix", default="02:d8:76", show_default=True,
                 help="OUI (three octets) automatic VirtualMachineMACAddresses are allocated under."),
]


def platform_options(command: F) -> F:
    """Adds the shared flags to a click command, in this order in its --help."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
