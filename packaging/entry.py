"""Entry script of the single binary (build.spec): the `dvp` root command."""

from installer.cli.main import main

main()
