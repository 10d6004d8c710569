"""Where the shipped docs and examples are (the repository's `docs/` and `examples/`, bundled by
build.spec), and the example sets `dvp examples` prints. Pure lookups: the CLI prints them."""

from __future__ import annotations

from pathlib import Path

from installer.install.binary import bundle_dir

# set name -> example files, applied in this order. The `generic` VirtualMachineClass is not in
# any set: the install creates it, and applying it again would conflict with its owner.
EXAMPLE_SETS: dict[str, tuple[str, ...]] = {
    "quickstart": ("03-vi-ubuntu.yaml", "04-vd-linux-disk.yaml", "06-vm-linux.yaml"),
    "cluster-image": ("02-cvi-ubuntu.yaml",),
    "static-ip": ("05-vmip-static.yaml",),
    "data-disk": ("07-vmbda-data-disk.yaml",),
    "restart": ("08-vmop-restart.yaml",),
    "vmclass": ("01-vmclass-generic.yaml",),
}


class NotShipped(LookupError):
    """No such topic; the message lists the ones there are."""


def docs_dir() -> Path:
    return bundle_dir() / "docs"


def examples_dir() -> Path:
    return bundle_dir() / "examples"


def topics() -> list[str]:
    return sorted(p.stem for p in docs_dir().glob("*.md"))


def doc_text(topic: str) -> str:
    name = topic.removesuffix(".md").removeprefix("docs/")
    path = docs_dir() / f"{name}.md"
    if not path.is_file():
        raise NotShipped(f"no document {topic!r}; there are: {', '.join(topics())}")
    return path.read_text()


def example_text(name: str) -> str:
    files = EXAMPLE_SETS.get(name)
    if files is None:
        raise NotShipped(f"no example set {name!r}; there are: {', '.join(sorted(EXAMPLE_SETS))}")
    parts: list[str] = []
    for file in files:
        text = (examples_dir() / file).read_text().strip("\n")
        parts.append(text if text.startswith("---") or not parts else "---\n" + text)
    return "\n".join(parts) + "\n"
