"""Examples of upstream events and their mappings (docs/upstream-events.md)."""
