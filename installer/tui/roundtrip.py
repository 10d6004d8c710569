"""Saving an edited install config over the user's own file without losing what they wrote:
the original is loaded with ruamel.yaml's round-trip loader (comments, key order, quoting,
`10` stays an int and `10.0` a float), the wizard's document is merged into that tree — values
that did not change keep their original node — and the tree is dumped again.

A plain `yaml.safe_dump` of the validated config would drop every comment and write numbers
as the model holds them; this module is why "Save as" keeps a file recognisably the user's.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long lines (paths, URLs)
    return yaml


def merge_into(original_text: str, doc: dict[str, Any]) -> str:
    """`doc` written into the round-trip tree of `original_text` (a mapping at the top)."""
    yaml = _yaml()
    tree = yaml.load(original_text) if original_text.strip() else None
    if not isinstance(tree, CommentedMap):
        tree = CommentedMap()
    merged = _merge(tree, doc)
    out = io.StringIO()
    yaml.dump(merged, out)
    return out.getvalue()


def _merge(old: Any, new: Any) -> Any:
    if isinstance(new, dict) and isinstance(old, CommentedMap):
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, value in new.items():
            old[key] = _merge(old[key], value) if key in old else value
        return old
    if isinstance(new, list) and isinstance(old, CommentedSeq):
        for i, value in enumerate(new):
            if i < len(old):
                old[i] = _merge(old[i], value)
            else:
                old.append(value)
        del old[len(new):]
        return old
    if type(old) is not bool and type(new) is not bool and old == new:
        return old  # unchanged: the original node (its type, quoting, comments) stays
    return new
