"""YAML parsing that keeps positions, so every config error can name its line and column.

The document is composed once into PyYAML nodes (which carry start marks) and constructed into
plain data from the same nodes. `Document.position(loc)` finds the node of a field path; when
the field itself is absent (a missing required field) it falls back to the nearest enclosing
mapping or list item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from installer.config.errors import ConfigInvalid, ConfigIssue, Loc, format_path


@dataclass
class Document:
    """A parsed config file: its data, its node tree and problems found while parsing."""

    filename: str
    data: Any
    root: yaml.Node | None
    issues: list[ConfigIssue] = field(default_factory=list)

    def position(self, loc: Loc) -> tuple[int, int]:
        """1-based (line, column) of the field at `loc`: its key when it has one."""
        node = self.root
        mark = node.start_mark if node is not None else None
        for part in loc:
            if node is None:
                break
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                pair = _find_key(node, part)
                if pair is None:
                    break
                key_node, node = pair
                mark = key_node.start_mark
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                mark = node.start_mark
            else:
                break
        if mark is None:
            return (1, 1)
        return (mark.line + 1, mark.column + 1)

    def scalar_text(self, loc: Loc) -> str | None:
        """The value at `loc` exactly as written, when it is a scalar."""
        node = self.root
        for part in loc:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                pair = _find_key(node, part)
                node = pair[1] if pair else None
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                return None
        return node.value if isinstance(node, yaml.ScalarNode) else None

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        line, column = self.position(loc)
        return ConfigIssue(self.filename, line, column, format_path(loc), message)


def _find_key(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def parse_document(text: str, filename: str) -> Document:
    """Parse one YAML document; syntax errors raise `ConfigInvalid` with their position."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise ConfigInvalid([ConfigIssue(filename, line, column, "", f"YAML syntax error: the character "
                                         f"{exc.character:#06x} is not allowed in YAML")]) from None
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if "block" in problem:
            problem += " (check the indentation)"
        raise ConfigInvalid(
            [ConfigIssue(filename, line, column, "", f"YAML syntax error: {problem}")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigInvalid([ConfigIssue(filename, 1, 1, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    doc = Document(filename=filename, data=data, root=root)
    if root is not None:
        _check_duplicate_keys(doc, root, ())
    return doc


def _check_duplicate_keys(doc: Document, node: yaml.Node, loc: Loc) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if isinstance(key, str):
                if key in seen:
                    mark = key_node.start_mark
                    doc.issues.append(
                        ConfigIssue(
                            doc.filename,
                            mark.line + 1,
                            mark.column + 1,
                            format_path((*loc, key)),
                            "duplicate key (an earlier value would be silently replaced)",
                        )
                    )
                seen.add(key)
                _check_duplicate_keys(doc, value_node, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(doc, item, (*loc, i))
