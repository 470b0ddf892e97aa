"""The stages of one month, each with its file I/O, in the order they run (flows/run.py):
read, validate, route, decide, propose (payments), publish."""
