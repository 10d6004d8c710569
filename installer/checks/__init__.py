"""Preflight checks: before anything changes, tell whether every host can run the platform and
exactly what to fix where it can't.

Flow: `runner.run_preflight(config)` → per host (in parallel) `session.collect()` connects,
probes, becomes root and gathers `facts.HostFacts` with one script → the `catalog` of checks
(one module per group under `groups/`) judges those facts → `model.PreflightReport`, printed by
`render` or consumed by the install phase and the TUI.
"""
