"""Training from the merged labels: reward model (reward.py), PPO (ppo.py), jobs (jobs.py).

Importing this package is cheap: torch/transformers/trl are imported inside the modules that
train, never by jobs.py (which the CLI and the app import).
"""
