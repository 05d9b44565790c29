"""The catalog: reading it, provider popularity, the published authority table."""
