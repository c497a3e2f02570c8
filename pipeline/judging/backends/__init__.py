"""Judge backends: local transformers (log-probabilities, direct scores, reward model, the
single-response harmless judge) and OpenAI-compatible servers."""
