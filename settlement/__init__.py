"""Price books, tiered settlement rules, settlement runs and statements."""
