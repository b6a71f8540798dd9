"""The ILM family: infilling language models by CEFR level (write-ups 000 and 001)."""
