"""Load an install config from YAML into an `InstallConfig`, or fail with every problem found.

Order: YAML syntax (positions from the parser) → structure (pydantic: types, unknown fields,
required fields) → cross-field rules (`semantic`). All issues of the first failing stage are
reported together; `ConfigInvalid.issues` holds them sorted by position.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from installer.config.errors import ConfigInvalid, ConfigIssue, describe_pydantic_error
from installer.config.models import InstallConfig
from installer.config.semantic import semantic_issues
from installer.config.yamlpos import parse_document

MAX_CONFIG_BYTES = 1024 * 1024
"""An install config is a few KiB even with hundreds of hosts."""


def parse_config(
    text: str,
    filename: str = "install.yaml",
    *,
    known_checks: Collection[str] | None = None,
    environ: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> InstallConfig:
    """Parse and validate config text; raises `ConfigInvalid`."""
    doc = parse_document(text, filename)
    if doc.issues:
        raise ConfigInvalid(doc.issues)
    if not isinstance(doc.data, dict):
        found = "an empty document" if doc.data is None else f"a {type(doc.data).__name__}"
        raise ConfigInvalid(
            [ConfigIssue(filename, *doc.position(()), "", f"expected a mapping (kind: InstallConfig), found {found}")]
        )
    try:
        config = InstallConfig.model_validate(doc.data)
    except ValidationError as exc:
        issues = [
            doc.issue(
                tuple(err["loc"]),
                describe_pydantic_error(err, InstallConfig, raw=doc.scalar_text(tuple(err["loc"]))),
            )
            for err in exc.errors(include_url=False)
        ]
        raise ConfigInvalid(_dedupe(issues)) from None
    issues = semantic_issues(
        config, doc, known_checks=known_checks, environ=environ, check_files=check_files
    )
    if issues:
        raise ConfigInvalid(issues)
    return config


def load_config(
    path: str | Path,
    *,
    known_checks: Collection[str] | None = None,
    environ: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> InstallConfig:
    """Read and validate a config file; raises `ConfigInvalid` (also for an unreadable file)."""
    name = str(path)
    try:
        with Path(path).open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # a bounded read: /dev/zero or a huge file must not hang us
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigInvalid([ConfigIssue(name, 1, 1, "", "file does not exist")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigInvalid([ConfigIssue(name, 1, 1, "", f"cannot read the file: {exc}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigInvalid([ConfigIssue(name, 1, 1, "", f"the file is larger than {MAX_CONFIG_BYTES // 2**20} MiB: "
                                                         "is it the install config?")])
    return parse_config(
        text, name, known_checks=known_checks, environ=environ, check_files=check_files
    )


def dump_config(config: InstallConfig) -> str:
    """The YAML the unattended mode accepts for this config (defaults left out)."""
    data = config.model_dump(by_alias=True, mode="json", exclude_unset=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen: set[ConfigIssue] = set()
    out = []
    for issue in issues:
        if issue not in seen:
            seen.add(issue)
            out.append(issue)
    return out
