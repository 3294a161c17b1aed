"""`python -m fraudring.cli`: the console command, for subprocesses that need this interpreter."""

from fraudring.cli.app import main

main()
