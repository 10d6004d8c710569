"""`dvp ansible-playbook ...` (hidden): ansible's own playbook CLI, run in this process.

A frozen `dvp` (the PyInstaller binary) has no separate `ansible-playbook` script for
ansible-runner to execute, so the engine points ansible-runner at a tiny wrapper that runs
`<dvp> ansible-playbook ARGS...`, which lands here. From the source tree it works the same
way, which is how the tests exercise it without a build.
"""

from __future__ import annotations

import sys

import click


@click.command(
    "ansible-playbook",
    hidden=True,
    add_help_option=False,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def ansible_playbook(args: tuple[str, ...]) -> None:
    """Run ansible-playbook in-process (used by `dvp install` inside the single binary)."""
    from ansible.cli.playbook import PlaybookCLI

    sys.argv = ["ansible-playbook", *args]
    PlaybookCLI.cli_executor(["ansible-playbook", *args])  # exits with ansible's status
