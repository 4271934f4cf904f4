"""The ingest pipeline: walk and pair, examine each shot, persist in batches."""
