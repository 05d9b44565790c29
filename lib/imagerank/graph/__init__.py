"""Graph stage: the image -> page -> host -> domain graph built from extraction tables."""
