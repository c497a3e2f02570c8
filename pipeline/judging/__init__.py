"""AI judges: pairwise labels with confidence from label-token probabilities (both orders), an
OpenAI-compatible backend, a reward-model backend, and direct 1-10 scores (d-RLAIF).

Heavy libraries (torch, transformers, openai) are imported inside the backend modules only."""
