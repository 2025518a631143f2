"""Warehouses, parts, the stock ledger, reservations and reorder alerts."""
