"""Contracts shared by the trainer and the server: the event schema, the model artifact
format (write / publish / load) and the fold-in. Light: numpy, msgspec, msgpack, orjson, faiss."""
