"""Customers online (issue #23): consent, live RFM and segments, buy it again, real-time
triggers, the profile and erasure. Pure domain code (`scores.py`, `published.py`, `rules.py`'s
parsing, `triggers.py`'s decisions) apart from the store, the worker and the routes."""
