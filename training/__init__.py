"""Offline trainer: event logs → interactions → ALS → evaluation → FAISS → published model."""
