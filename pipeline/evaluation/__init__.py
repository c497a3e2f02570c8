"""Evaluation of systems: win rates per judge version and system pair, the Bradley-Terry
leaderboard, and the judge's length bias. SQL aggregates and one per-pair stream in
(pipeline/evaluation/outcomes.py), typed rows out."""
