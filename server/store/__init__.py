"""The store layer: every key in `keys.py`, the scripts helper, the connections, the embedded
Redis, and one small store per kind of state (sessions, trending; catalog, experiments and
consent next). Domain code imports only `records.py` from here."""
