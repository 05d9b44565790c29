"""Signals from the image itself: pixels, EXIF, embeddings, near-duplicates, VisualRank."""
