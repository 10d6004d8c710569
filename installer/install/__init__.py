"""`dvp install`: the phases that put the platform on hosts, shared by the CLI and the TUI."""
