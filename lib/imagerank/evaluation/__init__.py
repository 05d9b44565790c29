"""How well a score agrees with observed popularity, per provider: rank correlations, NDCG, R^2."""
