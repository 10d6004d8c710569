#!/usr/bin/python3
"""Ansible module `dvp_read_files`: several files of one host in one module run.

`ansible.builtin.slurp` reads one file per run; looped over a join bundle or a host's libvirt
certificates it costs one SSH round trip and one remote Python start per file. The roles read
those sets with this module instead (delegated to the master): one run, the same base64 content.
"""

from __future__ import annotations

import base64

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: dvp_read_files
short_description: Read several files at once (base64), like slurp for many
options:
  paths:
    description: Files to read.
    type: list
    elements: path
    required: true
"""

RETURN = r"""
contents:
  description: Path -> the file's content, base64-encoded (as slurp's `content`).
  type: dict
  returned: success
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"paths": {"type": "list", "elements": "path", "required": True}},
                           supports_check_mode=True)
    contents: dict[str, str] = {}
    for path in module.params["paths"]:
        try:
            with open(path, "rb") as f:
                contents[path] = base64.b64encode(f.read()).decode("ascii")
        except OSError as exc:
            module.fail_json(msg=f"cannot read {path}: {exc.strerror}", path=path)
    module.exit_json(changed=False, contents=contents)


if __name__ == "__main__":
    main()
