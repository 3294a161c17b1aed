"""The contract every package shares: ids and entity kinds, the transaction and the decision
stream record, the model's feature names. It imports nothing of the project but the foundation's
own modules, so every layer (API, loaders, stream, workers, training) can validate through it."""
