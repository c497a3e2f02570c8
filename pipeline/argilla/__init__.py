"""Argilla: AI labels out as suggestions, human answers back as labels. The only package that
imports argilla (the SDK); the local server lives in pipeline/argilla/.

config.py      settings from the environment (no argilla import: the CLI reads it cheaply)
connection.py  connect, retries with backoff, clear errors, a SyncRun row per run
records.py     the dataset settings and one record per pair
run.py         push, pull, sync
"""
