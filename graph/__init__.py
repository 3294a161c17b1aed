"""The transaction graph: store, ingest, labels, rings, investigator queries, export."""
