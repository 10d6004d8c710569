"""The virtualization.deckhouse.io CustomResourceDefinitions shipped with dvp.

The CRDs are plain YAML files in ``controlplane/api/crds/`` (one per kind), written to be
applied unchanged on a real Kubernetes cluster (the ``dkp`` target) and loaded by the
embedded API server at start (the ``embedded`` target). They are package data of
``controlplane.api``, read through :mod:`importlib.resources` so that they are found the
same way in a source checkout, an installed wheel and the PyInstaller one-file binary
(whose spec must collect ``controlplane/api/crds/*.yaml`` as data).

The files use YAML anchors for repeated sub-schemas; :func:`load_crds` returns plain,
independent ``dict`` trees (no shared sub-objects), safe for callers to mutate.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

GROUP = "virtualization.deckhouse.io"
CRD_DIR = "crds"
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class CRDLoadError(Exception):
    """A shipped CRD file is missing, unreadable or not a CustomResourceDefinition."""


def crd_files() -> list[Traversable]:
    """The packaged CRD files, sorted by file name."""
    folder = resources.files("controlplane.api").joinpath(CRD_DIR)
    files = [f for f in folder.iterdir() if f.is_file() and f.name.endswith(".yaml")]
    return sorted(files, key=lambda f: f.name)


def _parse(file: Traversable) -> dict[str, Any]:
    try:
        doc = yaml.load(file.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise CRDLoadError(f"cannot read CRD file {file.name}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
        raise CRDLoadError(
            f"CRD file {file.name}: expected one apiextensions.k8s.io/v1 CustomResourceDefinition, "
            f"found {type(doc).__name__} with kind {doc.get('kind') if isinstance(doc, dict) else None!r}"
        )
    expected = f"{doc['spec']['names']['plural']}.{doc['spec']['group']}"
    if doc["metadata"]["name"] != expected:
        raise CRDLoadError(f"CRD file {file.name}: metadata.name must be {expected!r}")
    return doc


@functools.cache
def _crds_json() -> str:
    """All CRDs as one JSON text: parsed once per process, shared by every caller."""
    files = crd_files()
    if not files:
        raise CRDLoadError(f"no CRD files found in package data controlplane/api/{CRD_DIR}/")
    return json.dumps([_parse(f) for f in files])


def load_crds() -> list[dict[str, Any]]:
    """Every shipped CRD as an independent dict, sorted by file name.

    Each call returns fresh trees; decoding the cached JSON also turns YAML aliases into
    independent copies.
    """
    result: list[dict[str, Any]] = json.loads(_crds_json())
    return result


INTERNAL_GROUP = "internal.virtualization.deckhouse.io"


def crds_by_kind(group: str = GROUP) -> dict[str, dict[str, Any]]:
    """The shipped CRDs of one API group (DVP's public one by default) keyed by ``spec.names.kind``."""
    return {crd["spec"]["names"]["kind"]: crd for crd in load_crds() if crd["spec"]["group"] == group}


def served_schema(crd: dict[str, Any], version: str = "v1alpha2") -> dict[str, Any]:
    """The openAPIV3Schema of one served version of a CRD."""
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served", False):
            schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{crd['metadata']['name']} does not serve version {version}")
