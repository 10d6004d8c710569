"""`python -m controlplane.dvcr import ...`: DVCR's own entry point (the `dvp dvcr` command
group alone), so the controllers start the importer job without going through the installer's
command line. The frozen `dvp` binary runs the same group as `dvp dvcr`."""

from controlplane.dvcr.cli import dvcr

if __name__ == "__main__":
    dvcr(prog_name="dvp dvcr")
