"""Pure polars rules of coop-payouts (SPEC section 4): no I/O, no Prefect."""
