"""Pure polars rules of coop-payouts (docs/payouts.md, docs/payments.md): no I/O, no
Prefect, no pandera, no `schemas` import (docs/README.md, "The layers").
"""
