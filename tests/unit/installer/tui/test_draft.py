"""The wizard's config draft without any UI: secret references, the target switch dropping
the dkp-only fields, empty sections pruned, and issues filtered by field path."""

from __future__ import annotations

import pytest

from installer.config.loader import dump_config
from installer.tui.draft import ConfigDraft, format_secret_ref, parse_secret_ref


@pytest.mark.parametrize(("text", "ref"), [
    ("env:DVP_SUDO", {"fromEnv": "DVP_SUDO"}),
    ("file:/etc/dvp/pw", {"fromFile": "/etc/dvp/pw"}),
    ("  ", None),
], ids=["env", "file", "blank"])
def test_secret_references_round_trip(text: str, ref: dict[str, str] | None) -> None:
    assert parse_secret_ref(text) == ref
    if ref is not None:
        assert format_secret_ref(ref) == text


@pytest.mark.parametrize("text", ["hunter2", "env:", "vault:x"], ids=["inline", "empty-name", "unknown-kind"])
def test_anything_but_a_reference_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_secret_ref(text)
    assert str(exc.value) == "expected env:VARIABLE or file:PATH (a reference, never the secret itself)"


def test_no_host_is_pre_filled() -> None:
    draft = ConfigDraft(environ={})
    assert draft.hosts == []
    assert [i.path for i in draft.issues("hosts")] == ["hosts"]


def test_switching_to_embedded_drops_the_dkp_fields() -> None:
    draft = ConfigDraft(environ={})
    draft.put_host(None, {"address": "localhost", "role": "master"})
    draft.set_target("dkp")
    draft.set_field(("cluster", "kubernetesVersion"), "1.29")
    draft.set_field(("cluster", "registry"), {"address": "registry.example/ce"})
    assert draft.issues() == []
    draft.set_target("embedded")
    assert "cluster" not in draft.doc
    config = draft.build()
    assert "cluster:" not in dump_config(config)


def test_issues_are_filtered_by_field_path() -> None:
    draft = ConfigDraft(environ={})
    draft.put_host(None, {"address": "localhost", "role": "master"})
    draft.set_field(("virtualization", "dvcrStorageSize"), "lots")
    draft.hosts[0]["name"] = "Bad_Name"
    assert [i.path for i in draft.issues("hosts")] == ["hosts[0].name"]
    assert [i.path for i in draft.issues("virtualization")] == ["virtualization.dvcrStorageSize"]
    assert draft.issues("host") == []  # a prefix of a key is not a parent path
