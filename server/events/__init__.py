"""Events: the ingest route (validate → one store call → acknowledge) and the export of the
durable stream for training."""
