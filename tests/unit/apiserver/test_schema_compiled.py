"""The compiled schema check never accepts what jsonschema refuses.

The API server asks the compiled check (fastjsonschema) first and jsonschema only for a value
the compiled check refuses (`apiserver/schema.py`, `_Checker`): a value the compiled check let
through that jsonschema would refuse would be stored unchecked. Here every served version of
every shipped CRD gets random documents, most of them a little wrong (a wrong type, a value out
of its enum, a string against its pattern or length, a missing required field), and the two are
compared on each."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import yaml

from controlplane.api.crds import load_crds
from controlplane.apiserver.schema import StructuralSchema, _compile, _dollars_in_sets_escaped, _Draft4

STRINGS = ("", "a", "Abc", "abc-1", "100%", "Auto", "1Gi", "512Mi", "10.0.0.1", "http://example.com/a.img",
           "https://x/$y", "Ready\n", "x" * 300, "Ready", "VirtualDisk", "00:11:22:33:44:55", "éé")
DOCS = Path(__file__).resolve().parents[2] / "fixtures" / "dvp_docs"
WRONG = (None, 3, -1, 2.5, True, "x", [], {}, ["x"], {"a": 1})


def _sample(schema: dict[str, Any], rng: random.Random, depth: int = 0) -> Any:
    if rng.random() < 0.04:
        return rng.choice(WRONG)
    if "enum" in schema and rng.random() < 0.85:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _sample(rng.choice(schema[key]), rng, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind == "object" or "properties" in schema:
        out: dict[str, Any] = {}
        if depth < 8:
            required = set(schema.get("required", ()))
            for name, sub in (schema.get("properties") or {}).items():
                if (name in required and rng.random() < 0.95) or rng.random() < 0.5:
                    out[name] = _sample(sub, rng, depth + 1)
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                for i in range(rng.randint(0, 2)):
                    out[f"k{i}"] = _sample(extra, rng, depth + 1)
        return out
    if kind == "array":
        items = schema.get("items")
        return [_sample(items, rng, depth + 1) if isinstance(items, dict) else rng.choice(STRINGS)
                for _ in range(rng.randint(0, 3))]
    if kind == "integer":
        return rng.choice((0, 1, 2, 5, 100, 1024, -1, 10**12))
    if kind == "number":
        return rng.choice((0, 1, 0.5, 100, -3.5))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return rng.choice(STRINGS)


def _schemas() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for crd in load_crds():
        for version in crd["spec"]["versions"]:
            raw = version["schema"]["openAPIV3Schema"]
            out.append((f"{crd['spec']['names']['kind']}/{version['name']}",
                        StructuralSchema(raw, kind=crd["spec"]["names"]["kind"])._json_schema))
    return out


@pytest.mark.parametrize(("name", "schema"), _schemas(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_compiled_check_and_jsonschema_agree(name: str, schema: dict[str, Any]) -> None:
    """Above all, the compiled check never accepts what jsonschema refuses (the value would be
    stored unchecked); and it accepts what jsonschema accepts (else the fast path is not taken).
    Both run patterns on RE2, so a value ending in a newline gets one answer."""
    fast, full = _compile(schema), _Draft4(schema)
    rng = random.Random(name)
    refused = 0
    for _ in range(300):
        doc = _sample(schema, rng)
        errors = list(full.iter_errors(doc))
        try:
            fast(doc)
        except fastjsonschema.JsonSchemaException as exc:
            refused += 1
            assert errors, f"{name}: the compiled check refused {doc!r} ({exc}), which jsonschema accepts"
            continue
        assert not errors, f"{name}: the compiled check accepted {doc!r}, which jsonschema refuses: {errors[0].message}"
    assert refused, f"{name}: no sample was wrong: the comparison proved nothing"


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.yaml")), ids=lambda p: p.name)
def test_dvp_manifests_pass_the_compiled_check(path: Path) -> None:
    """DVP's own manifests (valid) take the fast path."""
    crds = {crd["spec"]["names"]["kind"]: crd for crd in load_crds()}
    for doc in yaml.safe_load_all(path.read_text()):
        crd = crds[doc["kind"]]
        version = doc["apiVersion"].split("/")[1]
        raw = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
        schema = StructuralSchema(raw, kind=doc["kind"])
        schema.apply_defaults(doc)
        _compile(schema._json_schema)({k: v for k, v in doc.items() if k != "metadata"})


def test_a_dollar_inside_a_set_stays_a_dollar() -> None:
    assert _dollars_in_sets_escaped(r"^a[$-_@]b$") == r"^a[\$-_@]b$"
    assert _dollars_in_sets_escaped(r"[]$]x\[$") == r"[]\$]x\[$"
    url = {"type": "string", "pattern": r"^http[s]?:\/\/(?:[a-zA-Z]|[0-9]|[$-_@.&+])+$"}
    check = _compile(url)
    check("https://example.com/$x")
    with pytest.raises(fastjsonschema.JsonSchemaException):
        check("ftp://example.com")
