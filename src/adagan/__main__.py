"""`python -m adagan` is the `adagan` command."""

from adagan.cli.main import main

main()
