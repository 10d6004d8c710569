"""Schema patterns run on RE2, as kube-apiserver's (Go regexp) do (`apiserver/regex.py`): a value
costs its length whatever the pattern, `$` means the end of the value, and a CRD whose pattern
Go would not take is refused naming the field."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from controlplane.api.crds import load_crds
from controlplane.apiserver import regex
from controlplane.apiserver.crds import validate_crd
from controlplane.apiserver.schema import StructuralSchema, _compile


def _virtual_image_schema() -> StructuralSchema:
    crd = next(c for c in load_crds() if c["spec"]["names"]["kind"] == "VirtualImage")
    version = next(v for v in crd["spec"]["versions"] if v["storage"])
    return StructuralSchema(version["schema"]["openAPIV3Schema"], kind="VirtualImage")


def _image(url: str) -> dict[str, Any]:
    return {"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "VirtualImage",
            "metadata": {"name": "i"},
            "spec": {"storage": "ContainerRegistry", "dataSource": {"type": "HTTP", "http": {"url": url}}}}


def _url_causes(schema: StructuralSchema, url: str) -> list[str]:
    return [c.message for c in schema.validate(_image(url)) if c.field == "spec.dataSource.http.url"]


def test_a_value_that_makes_python_re_backtrack_is_refused_at_once() -> None:
    """DVP's URL pattern has overlapping alternatives under `+`: Python's re takes 2^n steps on
    `http://` + n digits + a space (n=22 took a second, each digit doubles it). Run in a child
    process so that without RE2 the test fails on its timeout instead of hanging the suite."""
    script = textwrap.dedent("""
        import time
        from tests.unit.apiserver.test_schema_patterns import _url_causes, _virtual_image_schema
        schema = _virtual_image_schema()
        schema._validator.compiled().result()  # the compiled check too, not only jsonschema
        for n in (40, 100_000):
            causes = _url_causes(schema, "http://" + "1" * n + " ")
            assert causes and "should match" in causes[0], causes
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("compiled_first", [False, True], ids=["jsonschema", "compiled"])
def test_dollar_is_the_end_of_the_value_in_both_checks(compiled_first: bool) -> None:
    """Go's `$` (no multi-line flag) does not match before a final newline; Python's re does.
    Both the compiled check and jsonschema answer as Go."""
    schema = _virtual_image_schema()
    if compiled_first:
        schema._validator.compiled().result()
    assert not _url_causes(schema, "https://example.com/a.img")
    assert _url_causes(schema, "https://example.com/a.img\n")


def test_the_compiled_check_runs_its_patterns_on_re2() -> None:
    check = _compile({"type": "string", "pattern": "^a$"})
    table = check.__globals__["REGEX_PATTERNS"]  # type: ignore[attr-defined]
    assert table and all(program is regex.compiled(p) for p, program in table.items())


def _crd(pattern: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "properties": {"spec": {"type": "object", "properties": {
                             "tags": {"type": "array", "items": {"type": "string", "pattern": pattern}}}}}}}}]}}


@pytest.mark.parametrize("pattern", [r"^(?=a)b$", r"^(a)\1$", r"(?<!x)y"])
def test_a_crd_with_a_pattern_go_refuses_is_refused_naming_it(pattern: str) -> None:
    causes = validate_crd(_crd(pattern))
    assert [c.field for c in causes] == [
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[tags].items.pattern"], causes
    assert "must be a valid regular expression" in causes[0].message


def test_a_crd_with_re2_patterns_is_taken() -> None:
    assert validate_crd(_crd(r"^(?P<name>[\w-]+)(\.[a-z]+)*$")) == []


def test_every_shipped_pattern_is_re2() -> None:
    for crd in load_crds():
        assert validate_crd(crd) == [], crd["metadata"]["name"]


def test_values_are_matched_as_utf8_text_and_a_lone_surrogate_does_not_raise() -> None:
    assert regex.search("^é+$", "éé") and not regex.search("^é$", "éé")
    assert regex.search(r"^\w+$", "abc_1") and not regex.search(r"^\w+$", "абв")  # Go's \w is ASCII
    assert regex.search("^a", "a\ud800") and not regex.search("^[a-z]+$", "a\ud800")
