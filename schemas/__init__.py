"""pandera models of every input and output dataset of coop-payouts (SPEC sections 3 and 5)."""
