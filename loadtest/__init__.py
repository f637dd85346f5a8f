"""Load tests: locust scenarios of storefront traffic and the fixed-rate latency benchmark."""
