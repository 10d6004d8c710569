"""How long imports and uploads into DVCR take and how many bytes they move.

DVP's importer (CDI's) exports only a per-import progress (`kubevirt_cdi_import_progress_total`,
percent, by ownerUID), which the controller turns into `status.progress`; a cluster-wide view of imports (are they
slow, are they failing, how much is fetched) needs counters in the process that runs them.
`import_image` records every attempt. Uploads run inside DVCR, so they reach DVCR's
`/metrics`; imports the image controller starts as `dvp dvcr import` child processes count
in that short-lived process only (not yet carried back to a scraped process).

- `d8_virtualization_dvcr_import_duration_seconds{source_type,result}` (histogram)
- `d8_virtualization_dvcr_import_bytes_total{source_type}` bytes fetched from the source
  (still compressed, as DVP's `importer` counts `source size`)
- `d8_virtualization_dvcr_import_stored_bytes_total{source_type}` bytes written to DVCR
- `d8_virtualization_dvcr_imports_total{source_type,result}` with `result` `Succeeded` or the
  failure's reason (`SourceUnavailable`, `ChecksumMismatch`, `UnsupportedFormat`, ...)

`source_type` follows DVP's dataSource types: `HTTP`, `ContainerImage`, `Upload`, `File`.
"""

from __future__ import annotations

from controlplane.common.metrics import REGISTRY

SUCCEEDED = "Succeeded"

DURATION = REGISTRY.histogram("d8_virtualization_dvcr_import_duration_seconds",
                              "Time an import or upload into DVCR took, from opening the source to the manifest.",
                              ("source_type", "result"),
                              buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0))
FETCHED = REGISTRY.counter("d8_virtualization_dvcr_import_bytes_total",
                           "Bytes read from import and upload sources (as sent, before unpacking).", ("source_type",))
STORED = REGISTRY.counter("d8_virtualization_dvcr_import_stored_bytes_total",
                          "Bytes of image layers written to DVCR by imports and uploads.", ("source_type",))
IMPORTS = REGISTRY.counter("d8_virtualization_dvcr_imports_total",
                           "Imports and uploads into DVCR that finished, by result.", ("source_type", "result"))

_TYPES = {"HttpSource": "HTTP", "RegistrySource": "ContainerImage", "FileSource": "File", "StreamSource": "Upload"}


def source_type(source: object) -> str:
    """DVP's dataSource type for one of the importer's sources."""
    return _TYPES.get(type(source).__name__, "Other")


def record(kind: str, result: str, seconds: float, fetched: int, stored: int = 0) -> None:
    """Count one finished import (also a failed one: its time and the bytes it fetched)."""
    DURATION.observe(seconds, kind, result)
    IMPORTS.inc(kind, result)
    FETCHED.inc(kind, amount=float(fetched))
    if stored:
        STORED.inc(kind, amount=float(stored))
