"""The Ensemble family: a seq2seq and a causal model fine-tuned on the same instructions (write-up 002)."""
