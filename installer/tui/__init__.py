"""The interactive `dvp install`: a Textual wizard that builds the same `InstallConfig` the
unattended mode reads (`installer.config`), shows the preflight live (`installer.checks`),
and runs the same phase code (`installer.install.engine`) with a progress screen.

Entry point: `installer.tui.app.run_tui`; tests build the app with `make_app`.
"""
