"""Data: speech sources, the feature store, packing, and training batches."""
