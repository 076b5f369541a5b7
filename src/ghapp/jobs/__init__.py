"""Jobs: what runs, on which items, and when."""
