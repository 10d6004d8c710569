"""The one place the product's version lives.

Every component reports this version (the API server's /version, agents' Node labels,
`dvp --version`); the upgrade compares it across hosts. A build can override it with the
DVP_BUILD_VERSION environment variable at build time only through `build.spec`.
"""

__version__ = "0.1.0"
