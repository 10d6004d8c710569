"""What messages and next steps point at is there: `dvp docs TOPIC` prints the shipped document,
`dvp examples quickstart` prints manifests kubectl can apply (without the `generic` class the
install already created), and the install's next steps name those commands."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from installer.cli.main import cli
from installer.docs.shipped import EXAMPLE_SETS


def test_docs_lists_and_prints_topics() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["docs"])
    assert listed.exit_code == 0 and "upgrade" in listed.output.split() and "install" in listed.output.split()
    shown = runner.invoke(cli, ["docs", "upgrade"])
    assert shown.exit_code == 0 and shown.output.startswith("#")
    missing = runner.invoke(cli, ["docs", "nope"])
    assert missing.exit_code == 2 and "there are:" in missing.output


def test_examples_quickstart_is_applyable_yaml_without_the_installed_class() -> None:
    done = CliRunner().invoke(cli, ["examples", "quickstart"])
    assert done.exit_code == 0
    docs = [d for d in yaml.safe_load_all(done.output) if d]
    assert [d["kind"] for d in docs] == ["VirtualImage", "VirtualDisk", "VirtualMachine"]
    assert all(d["apiVersion"] == "virtualization.deckhouse.io/v1alpha2" for d in docs)
    vm = docs[-1]
    assert vm["spec"]["virtualMachineClassName"] == "generic"
    assert vm["spec"]["blockDeviceRefs"][0]["name"] == docs[1]["metadata"]["name"]
    assert not any("01-vmclass" in f for name, files in EXAMPLE_SETS.items() if name != "vmclass" for f in files)


def test_every_example_set_parses() -> None:
    for name in EXAMPLE_SETS:
        done = CliRunner().invoke(cli, ["examples", name])
        assert done.exit_code == 0, name
        assert all(d.get("apiVersion") for d in yaml.safe_load_all(done.output) if d), name
