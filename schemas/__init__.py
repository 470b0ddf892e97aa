"""pandera models of every input and output dataset of coop-payouts (docs/inputs.md,
docs/payouts.md)."""
