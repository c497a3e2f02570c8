"""Argilla: AI labels out as suggestions, human answers back as labels. The only package that
imports argilla (the SDK).

config.py      the Argilla view of pipeline/settings.py (no argilla import: cheap for the CLI)
connection.py  connect, retries with backoff, clear errors, a SyncRun row per run
records.py     the dataset settings and one record per pair
sync.py        push, pull, sync
local_server.py  the local argilla-server (no Docker) for tests and the demo; standard library only
server_plugin/   files that run INSIDE argilla-server's own virtualenv (its launcher and our SQL
                 search engine); package data, not importable as pipeline modules
"""
