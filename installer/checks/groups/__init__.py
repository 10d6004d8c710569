"""The preflight checks, one group per module; `installer.checks.catalog` puts them in order."""
