"""Popularity where providers publish none: a model trained on the providers that do."""
