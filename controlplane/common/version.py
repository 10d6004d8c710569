"""The one place the product's version lives.

Every component reports this version (the API server's /version, agents' Node labels,
`dvp --version`); the upgrade compares it across hosts. A build can override it with the
DVP_BUILD_VERSION environment variable at build time only: `build.spec` then bundles a build
stamp, `build-stamp.json` next to this module (`{"version": ..., "features": [...]}`), read
once at import; the source tree has none. `DVP_BUILD_FEATURES` (comma separated) sets
`BUILD_FEATURES` the same way: optional parts of a build, e.g. `upgrade-test`: the test-only
storage migration and failure hooks the upgrade's acceptance tests use for their "version B"
(see `controlplane/apiserver/upgradetest.py`). `packaging/onefile.py` writes the stamp of an
already built binary anew (tests/support/dist.py makes "version B" that way).
"""

from __future__ import annotations

import json
import os

STAMP_NAME = "build-stamp.json"  # also packaging/onefile.py's STAMP_NAME

__version__ = "0.1.0"
BUILD_FEATURES: frozenset[str] = frozenset()


def _read_stamp(path: str) -> tuple[str | None, frozenset[str]]:
    """The version (None: not overridden) and features in a build stamp; none if there is no stamp."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None, frozenset()
    version = doc.get("version") if isinstance(doc, dict) else None
    features = doc.get("features", []) if isinstance(doc, dict) else None
    if (
        (version is not None and not isinstance(version, str))
        or not isinstance(features, list)
        or not all(isinstance(f, str) for f in features)
    ):
        raise RuntimeError(f"{path}: not a build stamp (want {{'version': str, 'features': [str]}})")
    return version, frozenset(features)


def has_feature(name: str) -> bool:
    """True when this build was made with `name` in DVP_BUILD_FEATURES."""
    return name in BUILD_FEATURES


_stamp_version, BUILD_FEATURES = _read_stamp(os.path.join(os.path.dirname(__file__), STAMP_NAME))
if _stamp_version is not None:
    __version__ = _stamp_version
