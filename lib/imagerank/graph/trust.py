"""Trust: TrustRank's seed set, read from a trusted-sources file, and spam mass.

TrustRank (Gyongyi, Garcia-Molina and Pedersen, 2004) is PageRank whose teleport goes only to a
curated seed set; ``pagerank(..., seeds=...)`` computes it in every engine. The seed set here is
every vertex (page, host or domain) of the registered domains that ``trusted_sources.yaml`` names
(provider -> domains; the package's file, or one given with ``--trusted-sources``).

Spam mass (Gyongyi, Berkhin, Garcia-Molina and Pedersen, 2006) is the share of a vertex's PageRank
that trust does not explain. Both vectors sum to 1 here, and good vertices are taken to hold
``good_share`` of all PageRank (the paper's estimate, 0.85), spread as trust is:

    spam_mass = max(0, 1 - good_share * trust / pagerank)

0 where trust explains all of the PageRank, 1 where the vertex gets no trust at all (a link farm
no trusted site reaches). The paper's relative mass is the same quantity before the clip at 0
(negative near the seeds); docs/design.md ("Trust") says what it does and does not catch.
"""

from __future__ import annotations

import yaml
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.spark import package_conf
from imagerank.urls import registered_domain

GOOD_SHARE = 0.85
PACKAGE_FILE = "imagerank/conf/trusted_sources.yaml"


def load_trusted_sources(spark: SparkSession, path: str | None = None) -> dict[str, list[str]]:
    """provider -> registered domains, from ``path`` (any filesystem) or the package's file.

    Raises ValueError naming the file for anything but a mapping of names to lists of registered
    domains (lower-cased; a host such as www.metmuseum.org is refused with its registered domain)."""
    name = path or PACKAGE_FILE
    text = fs.read_text(fs.qualify(spark, path)) if path else package_conf("trusted_sources.yaml")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{name}: not YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(config, dict) or not config:
        raise ValueError(f"{name}: expected a mapping of provider -> [registered domains], got {type(config).__name__}")
    sources: dict[str, list[str]] = {}
    for provider, domains in config.items():
        if not isinstance(provider, str) or not provider.strip():
            raise ValueError(f"{name}: provider names must be non-empty strings, got {provider!r}")
        if isinstance(domains, str):
            domains = [domains]
        if not isinstance(domains, list) or not domains:
            raise ValueError(f"{name}: {provider}: expected a list of registered domains, got {domains!r}")
        cleaned = []
        for domain in domains:
            value = str(domain).strip().lower().rstrip(".") if isinstance(domain, str) else None
            registered = registered_domain(value) if value else None
            if registered is None:
                raise ValueError(f"{name}: {provider}: {domain!r} is not a registered domain")
            if registered != value:
                raise ValueError(f"{name}: {provider}: {domain!r} is a host; its registered domain is {registered!r}")
            cleaned.append(value)
        sources[provider.strip()] = sorted(set(cleaned))
    return sources


def seed_domains(sources: dict[str, list[str]]) -> list[str]:
    return sorted({domain for domains in sources.values() for domain in domains})


def seed_vertices(spark: SparkSession, vertices: DataFrame, domains: list[str]) -> DataFrame:
    """id of every vertex whose registered domain is a seed domain (a broadcast join: seeds are few)."""
    wanted = spark.createDataFrame([(d,) for d in domains], "domain string")
    return vertices.join(F.broadcast(wanted), on="domain", how="left_semi").select("id")


def spam_mass(pagerank: Column, trust: Column, good_share: float = GOOD_SHARE) -> Column:
    """max(0, 1 - good_share * trust / pagerank); null where trust is (no seed in the crawl)."""
    explained = F.lit(good_share) * trust / pagerank
    return F.when(trust.isNull(), F.lit(None).cast("double")).otherwise(
        F.greatest(F.lit(0.0), F.lit(1.0) - explained))
