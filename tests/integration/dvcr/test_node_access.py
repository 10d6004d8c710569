"""A node's DVCR pull credentials, checked against a real DVCR as the node handler checks them
(`DvcrImageSource.check_access`, reported as the Node's DVCRAccess condition): the node user's
credentials are accepted, a wrong password is refused with a message saying what to do and no
secret in it, and a DVCR that does not answer says nothing either way."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from controlplane.api.internal import NodeCondition
from controlplane.embedded.dvcr_images import DvcrImageSource
from controlplane.nodehandler import registry_access
from tests.services.apiserver import free_port
from tests.services.dvcr import DvcrProcess

pytestmark = pytest.mark.integration


class Registrar:
    def __init__(self) -> None:
        self.conditions: dict[str, tuple[bool, str, str]] = {}

    def set_condition(self, type_: str, ok: bool, reason: str, message: str) -> None:
        self.conditions[type_] = (ok, reason, message)


def _probe(source: DvcrImageSource) -> Any:
    registrar = Registrar()
    registry_access.probe([source], registrar)  # type: ignore[arg-type]
    return registrar.conditions.get(str(NodeCondition.DVCR_ACCESS))


def test_node_credentials_accepted_wrong_ones_refused(dvcr: DvcrProcess) -> None:
    source = DvcrImageSource(dvcr.data_dir / "dvcr.json")
    assert _probe(source) == (True, "DVCRCredentialsAccepted",
                              f"DVCR at {source.connection.registry} accepts this node's pull credentials")
    source.connection = dataclasses.replace(source.connection, password="not-the-password")
    ok, reason, message = _probe(source)
    assert (ok, reason) == (False, "DVCRCredentialsRefused")
    assert "refused this node's pull credentials (401)" in message and "not-the-password" not in message


def test_an_unreachable_dvcr_says_nothing(dvcr: DvcrProcess, tmp_path: Path) -> None:
    source = DvcrImageSource(dvcr.data_dir / "dvcr.json")
    source.connection = dataclasses.replace(source.connection, url=f"https://127.0.0.1:{free_port()}")
    assert _probe(source) is None
