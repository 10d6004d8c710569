#!/usr/bin/python3
"""Ansible module `dvp_config_lines`: `key = value` settings of one configuration file in one
module run.

`ansible.builtin.lineinfile` looped over the settings of qemu.conf (or libvirtd.conf) costs one
SSH round trip and one remote Python start per setting. This module applies the whole set the
way that loop did: per key, the last line matching `^\\s*KEY\\s*=` becomes `KEY = VALUE`, or the
line is appended when none matches; the file (which must exist) is rewritten atomically, keeping
its mode and owner, only if a line changed.
"""

from __future__ import annotations

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.dvp_atomic import write_atomic

DOCUMENTATION = r"""
module: dvp_config_lines
short_description: Set several `key = value` lines of a file at once (as lineinfile per key)
options:
  path: {type: path, required: true, description: The file; it must exist.}
  settings: {type: dict, required: true, description: Key -> value, written as `key = value`.}
"""


def apply(lines: list[str], settings: dict[str, object]) -> list[str]:
    """`lines` (without line ends) with every setting in place."""
    out = list(lines)
    for key, value in settings.items():
        wanted = f"{key} = {value}"
        pattern = re.compile(rf"^\s*{key}\s*=")
        matches = [i for i, line in enumerate(out) if pattern.search(line)]
        if matches:
            out[matches[-1]] = wanted
        else:
            out.append(wanted)
    return out


def main() -> None:
    module = AnsibleModule(argument_spec={"path": {"type": "path", "required": True},
                                          "settings": {"type": "dict", "required": True}},
                           supports_check_mode=True)
    path = module.params["path"]
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        module.fail_json(rc=257, msg=f"Destination {path} does not exist !")
    lines = text.splitlines()
    wanted = apply(lines, module.params["settings"])
    if wanted == lines:
        module.exit_json(changed=False)
    new = "\n".join(wanted) + "\n"
    if not module.check_mode:
        st = os.stat(path)
        write_atomic(path, new.encode("utf-8"), st.st_mode & 0o7777, st.st_uid, st.st_gid)
    module.exit_json(changed=True)


if __name__ == "__main__":
    main()
