"""Worlds written apart from `world/`, from a description of fraud only: held-out checks for
`bench rings`."""
