"""Imports and uploads into DVCR are counted: duration by source type and result, bytes
fetched and stored; a failed import counts under its reason and stores no bytes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from controlplane.common.metrics import REGISTRY
from controlplane.dvcr.importer import metrics
from controlplane.dvcr.importer.errors import ImportFailed
from controlplane.dvcr.importer.pipeline import import_image
from controlplane.dvcr.importer.sink import StoreSink
from controlplane.dvcr.importer.sources import StreamSource
from controlplane.dvcr.memdriver import MemoryDriver
from controlplane.dvcr.store import RegistryStore

DISK = b"\x00" * 1024 * 1024  # a raw disk image of 1 MiB


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 65536):
        yield data[i:i + 65536]


async def test_a_finished_upload_is_counted_with_its_bytes() -> None:
    before = metrics.IMPORTS.value("Upload", "Succeeded"), metrics.FETCHED.value("Upload")
    stored_before = metrics.STORED.value("Upload")
    count_before = metrics.DURATION.count("Upload", "Succeeded")
    sink = StoreSink(RegistryStore(MemoryDriver()), "dvcr.local")
    result = await import_image(StreamSource(chunks(DISK), len(DISK)), sink, "vi/default/metrics")
    assert metrics.IMPORTS.value("Upload", "Succeeded") == before[0] + 1
    assert metrics.FETCHED.value("Upload") == before[1] + len(DISK)
    assert metrics.STORED.value("Upload") == stored_before + result.stored_size > stored_before
    assert metrics.DURATION.count("Upload", "Succeeded") == count_before + 1
    text = REGISTRY.expose()
    assert 'd8_virtualization_dvcr_import_duration_seconds_count{source_type="Upload",result="Succeeded"}' in text
    assert "d8_virtualization_dvcr_import_bytes_total" in text


async def test_a_failed_import_is_counted_under_its_reason_without_stored_bytes() -> None:
    before = metrics.IMPORTS.value("Upload", "ChecksumMismatch")
    fetched_before, stored_before = metrics.FETCHED.value("Upload"), metrics.STORED.value("Upload")
    sink = StoreSink(RegistryStore(MemoryDriver()), "dvcr.local")
    wrong = {"sha256": hashlib.sha256(b"something else").hexdigest()}
    with pytest.raises(ImportFailed):
        await import_image(StreamSource(chunks(DISK), len(DISK)), sink, "vi/default/bad", checksums=wrong)
    assert metrics.IMPORTS.value("Upload", "ChecksumMismatch") == before + 1
    assert metrics.FETCHED.value("Upload") == fetched_before + len(DISK)  # the bytes were fetched all the same
    assert metrics.STORED.value("Upload") == stored_before


@pytest.mark.parametrize("name,kind", [("HttpSource", "HTTP"), ("RegistrySource", "ContainerImage"),
                                       ("FileSource", "File"), ("StreamSource", "Upload"), ("Other", "Other")])
def test_source_types_are_dvps_data_source_types(name: str, kind: str) -> None:
    assert metrics.source_type(type(name, (), {})()) == kind
