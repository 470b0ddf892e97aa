"""Prefect flows and tasks of coop-payouts: reading inputs, publishing outputs, the CLI."""
