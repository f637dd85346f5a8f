"""Recommendations: the serving model and its caches, retrieval (query vector, candidates),
the ladder `recommend()` and the one finishing stage every answer goes through, the trending
snapshot, and the routes."""
