"""DVC stage entry points (thin: parse arguments, load params, call one lmlab function)."""
