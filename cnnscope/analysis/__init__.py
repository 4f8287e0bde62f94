"""What is derived from records: grouping, receptive fields, spec tables, comparisons."""
