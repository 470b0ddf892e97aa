"""The outer layer of coop-payouts: the run and its stages with their file I/O (`flows/stages/`),
the Prefect flow, the command line and the output folder (docs/README.md, "The layers").
"""
