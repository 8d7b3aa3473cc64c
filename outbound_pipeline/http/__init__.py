"""Webhook receiver: verifies provider callbacks and lands them durably for sensors to ingest.

The receiver never opens DuckDB; see `landing` for the file format and cursor.
"""
