"""Experiments and personalization rules: definitions, GrowthBook-identical bucketing and
targeting, deciding a page's slots, results statistics and bandits.

Pure domain code (no aiohttp, no Redis): the store and routes build on it. `results` and
`bandit` import scipy/numpy inside their functions (the `vitrine[stats]` extra), never on the
request path.
"""
