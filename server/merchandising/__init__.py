"""Merchandising rules (pin, boost, bury, filter, price bounds, out-of-stock) scoped by placement,
segment, targeting condition and schedule, compiled to bit masks, score factors and pins that the
finishing stage applies to every answer; their store and routes."""
