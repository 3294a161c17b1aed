"""The synthetic fraud world with planted rings, and loaders that bring real data into it."""
