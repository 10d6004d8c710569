"""`dvp upgrade`: replace an installed platform's `dvp` host by host, VMs kept running, and put
everything back by itself when a step fails.

Flow: `platform` (where the platform is: install config or kubeconfig + hosts) → `bundle`
(what the new binary is: `--version`, data version, checksum) → `preflight` (refusals with
what to fix) → `plan` (hosts in order, what is replaced, backed up, restarted, VM impact) →
`engine` (steps per host, health checks from `health`, rollback) with every step recorded in
`records` on the server host (`dvp upgrade history`), progress and a log from `progress`.
Remote work goes through `remote` (SSH sessions from `installer.ssh`, root via sudo) on the
layout of `installer.hostlayout`.
"""
