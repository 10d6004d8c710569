#!/usr/bin/python3
"""Ansible module `dvp_write_files`: several directories and small files of one host in one
module run.

`ansible.builtin.copy` with `content` costs per file a remote stat, then (changed) a temporary
directory, a file transfer, the copy itself and a clean-up: four to seven SSH round trips and
two or three remote Python starts. A join bundle, a host's libvirt certificates or a service's
configuration files are a handful of small files each; this module writes such a set in one run:
each file atomically (a temporary file in its directory, then rename), with the given mode,
owned by `owner`:`group`, and only when its content, mode or owner differ. `dirs` are created
first (with parents, as `ansible.builtin.file` does), each given its mode, and its owner when
named (an existing directory of another owner, e.g. libvirt's, keeps it). `changed` and
`changed_paths` say what it wrote.
"""

from __future__ import annotations

import base64
import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.dvp_atomic import write_atomic

DOCUMENTATION = r"""
module: dvp_write_files
short_description: Write several small files at once (content, mode, owner), atomically
options:
  dirs:
    description: Directories to create (parents too) or whose mode (and owner, if named) to set.
    type: list
    elements: dict
    default: []
    suboptions:
      path: {type: path, required: true}
      mode: {type: str, required: true}
      owner: {type: str}
      group: {type: str}
  files:
    description: The files; C(content) is text, C(content_base64) bytes in base64 (one of them).
    type: list
    elements: dict
    default: []
    suboptions:
      path: {type: path, required: true}
      content: {type: str, no_log: true}
      content_base64: {type: str, no_log: true}
      mode: {type: str, required: true}
  owner: {type: str, default: root}
  group: {type: str, default: root}
"""

RETURN = r"""
changed_paths:
  description: The files written or whose mode or owner were set.
  type: list
  returned: success
"""


def _wanted(spec: dict[str, object]) -> bytes:
    if spec.get("content_base64") is not None:
        return base64.b64decode(str(spec["content_base64"]))
    return str(spec.get("content") or "").encode()


def _differs(path: str, data: bytes, mode: int, uid: int, gid: int) -> tuple[bool, bool]:
    """(content differs or missing, only mode/owner differ)"""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            same = f.read() == data
    except FileNotFoundError:
        return True, False
    return not same, (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (mode, uid, gid)


def _ids(owner: str | None, group: str | None) -> tuple[int, int]:
    """uid and gid to set (-1: leave as is)."""
    return (pwd.getpwnam(owner).pw_uid if owner else -1, grp.getgrnam(group).gr_gid if group else -1)


def _dir(path: str, mode: int, uid: int, gid: int, *, check: bool) -> bool:
    """Make `path` a directory with `mode` (and owner, unless -1); True if anything changed."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if not check:
            os.makedirs(path, mode=mode)
            os.chmod(path, mode)  # not masked by the umask
            os.chown(path, uid, gid)
        return True
    changed = False
    if st.st_mode & 0o7777 != mode:
        changed = True
        if not check:
            os.chmod(path, mode)
    if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
        changed = True
        if not check:
            os.chown(path, uid, gid)
    return changed


def main() -> None:
    file_spec = {"path": {"type": "path", "required": True}, "content": {"type": "str", "no_log": True},
                 "content_base64": {"type": "str", "no_log": True}, "mode": {"type": "str", "required": True}}
    dir_spec = {"path": {"type": "path", "required": True}, "mode": {"type": "str", "required": True},
                "owner": {"type": "str"}, "group": {"type": "str"}}
    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "default": [], "options": file_spec},
                       "dirs": {"type": "list", "elements": "dict", "default": [], "options": dir_spec},
                       "owner": {"type": "str", "default": "root"}, "group": {"type": "str", "default": "root"}},
        supports_check_mode=True,
    )
    uid, gid = _ids(module.params["owner"], module.params["group"])
    changed: list[str] = []
    for spec in module.params["dirs"]:
        try:
            if _dir(spec["path"], int(spec["mode"], 8), *_ids(spec["owner"], spec["group"]), check=module.check_mode):
                changed.append(spec["path"])
        except OSError as exc:
            module.fail_json(msg=f"cannot create {spec['path']}: {exc.strerror}", path=spec["path"], changed_paths=changed)
    for spec in module.params["files"]:
        path, mode = spec["path"], int(spec["mode"], 8)
        data = _wanted(spec)
        content_differs, attrs_differ = _differs(path, data, mode, uid, gid)
        if not (content_differs or attrs_differ):
            continue
        changed.append(path)
        if module.check_mode:
            continue
        try:
            if content_differs:
                write_atomic(path, data, mode, uid, gid)
            else:
                os.chown(path, uid, gid)
                os.chmod(path, mode)
        except OSError as exc:
            module.fail_json(msg=f"cannot write {path}: {exc.strerror}", path=path, changed_paths=changed[:-1])
    module.exit_json(changed=bool(changed), changed_paths=changed)


if __name__ == "__main__":
    main()
