"""The live catalog: items, stock, prices and attributes layered over the published model's item
metadata (a Redis overlay, mirrored in every worker), its store and its routes."""
