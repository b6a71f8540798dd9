"""The monotonic family: monotone FFNs under UAT and HotFlip attacks (write-up 004)."""
