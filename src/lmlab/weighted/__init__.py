"""The weighted-loss family: gamma-weighted Accept/Reject decisions (write-up 003)."""
