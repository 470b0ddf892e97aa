"""One month composed as named stages over pure frames (docs/README.md, "The layers").

    validate  pipeline/validate.py   the reference datasets, row by row
    route     pipeline/route.py      every in-scope earnings row to a plan or an exception
    decide    pipeline/decide.py     each plan's payout row, the month's exceptions, reconciliation
    propose   pipeline/propose.py    the payment batch from each account's balance

No file I/O and no Prefect here: `flows/stages/` reads the files, calls these, and hands the
results from one stage to the next. Below this layer: `schemas/` (pandera) and `coop_rules/`.
"""
