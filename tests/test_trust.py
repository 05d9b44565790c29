"""Trust: TrustRank in every PageRank engine against networkx's personalized PageRank, spam mass,
the trusted-sources file, and the rank stage's trust columns on generated, real and sample graphs."""

import networkx as nx
import pytest
from pyspark.sql import functions as F

from imagerank.graph.pagerank import pagerank

from conftest import requires_graphframes

from test_rank import _example, _generated

ENGINES = ["driver", "dataframe", "graphx", "graphframes"]
# The engines with a proven bound (tol * d / (1 - d) in L1) at 1e-7: an error of at most 5.7e-7, inside
# the 1e-6 asserted, at a fraction of 1e-10's iterations, each a Spark job (a checkpoint for dataframe,
# two Python tasks a block for block, a level of lineage for graphx); graphframes' per-vertex threshold
# (observed, not proven) at 1e-8
TOL = {"driver": 1e-10, "dataframe": 1e-7, "block": 1e-7, "graphx": 1e-7, "graphframes": 1e-8}
DAMPINGS = {"driver": (0.85, 0.5), "dataframe": (0.85, 0.5), "graphx": (0.85,), "graphframes": (0.85,)}
SEED_SETS = {"driver": ({0}, {2}, {1, 3}), "dataframe": ({2},), "block": ({2},), "graphx": ({1, 3},),
             "graphframes": ({1, 3},)}


def _personalized(graph, seeds, damping):
    weights = {v: (1.0 if v in seeds else 0.0) for v in graph}
    return nx.pagerank(graph, alpha=damping, personalization=weights, tol=1e-13, max_iter=10_000)


# graphframes' seeded run (the virtual source, as graphx's) on this graph is in the slow batch
@pytest.mark.parametrize("engine", [pytest.param(e, marks=pytest.mark.slow) if e == "graphframes" else e for e in ENGINES])
def test_trustrank_matches_networkx_personalization_on_generated_graphs(spark, engine):
    """Seeds: a dangling vertex, an isolated one, a hub and an ordinary one; dangling score goes back to them."""
    if engine == "graphframes":
        requires_graphframes(spark)
    ids, edges, graph = _generated(spark)
    seeds = {0, 7, 385, 399}  # 385..394: dangling; 395..399: isolated
    assert graph.out_degree(385) == 0 and graph.degree(399) == 0
    for damping in DAMPINGS[engine]:
        scores, info = pagerank(spark, ids, edges, damping=damping, engine=engine, tol=TOL[engine],
                                seeds=spark.createDataFrame([(s,) for s in seeds] + [(10_000,)], "id long"))
        expected = _personalized(graph, seeds, damping)
        got = {r["id"]: r["pagerank"] for r in scores.collect()}
        assert info.seeds == 4  # 10,000 is no vertex: not a seed
        assert set(got) == set(graph)
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-12)
        assert max(abs(got[v] - expected[v]) for v in graph) < 1e-6
        unreachable = set(graph) - set().union(*(nx.descendants(graph, s) | {s} for s in seeds))
        assert unreachable and all(got[v] == pytest.approx(0.0, abs=1e-12) for v in unreachable)


# every engine on the generated graphs (dangling and isolated seeds) in make test; the Spark engines
# on the published example in the slow batch (make test-slow)
# (the block engine's generated-graph TrustRank: test_rank's test_the_block_engine_over_two_blocks)
@pytest.mark.parametrize("engine", [e if e == "driver" else pytest.param(e, marks=pytest.mark.slow)
                                    for e in ENGINES + ["block"]])
def test_trustrank_on_the_published_example(spark, engine):
    if engine == "graphframes":
        requires_graphframes(spark)
    vertices, edges, graph = _example(spark)
    for seeds in SEED_SETS[engine]:  # 0: the hub; 2: dangling
        scores, info = pagerank(spark, vertices, edges, engine=engine, tol=TOL[engine],
                                seeds=spark.createDataFrame([(s,) for s in seeds], "id long"))
        expected = _personalized(graph, seeds, 0.85)
        got = {r["id"]: r["pagerank"] for r in scores.collect()}
        assert max(abs(got[v] - expected[v]) for v in graph) < 1e-6, (seeds, got, expected)


def test_trustrank_needs_a_seed_in_the_graph(spark):
    ids, edges, _ = _generated(spark)
    with pytest.raises(ValueError, match="no seed vertex"):
        pagerank(spark, ids, edges, seeds=spark.createDataFrame([(123_456,)], "id long"))


def test_the_trusted_sources_file(spark, tmp_path):
    from imagerank.graph.trust import load_trusted_sources, seed_domains

    shipped = load_trusted_sources(spark)
    assert shipped["met"] == ["metmuseum.org"] and "wikimedia.org" in shipped["wikimedia"]
    assert "flickr" not in shipped and len(seed_domains(shipped)) >= 15
    mine = tmp_path / "mine.yaml"
    mine.write_text("museum: [Example.ORG, example.org]\nlibrary: library.co.uk\n")
    assert load_trusted_sources(spark, str(mine)) == {"museum": ["example.org"], "library": ["library.co.uk"]}
    for text, problem in (("museum: [www.example.org]", "is a host; its registered domain is 'example.org'"),
                          ("museum: [co.uk]", "'co.uk' is not a registered domain"),
                          ("museum: []", "expected a list of registered domains"),
                          ("- example.org", "expected a mapping of provider"),
                          ("museum: [a, b", "not YAML")):
        mine.write_text(text)
        with pytest.raises(ValueError, match="mine.yaml") as error:
            load_trusted_sources(spark, str(mine))
        assert problem in str(error.value)


def test_rank_job_trust_and_spam_mass_on_the_sample(spark, sample_pipeline):
    """Seeds: the sample's museum (openmuseum.org). Its link farm, which no site links to, gets no
    trust and spam mass 1, though the farm's www host has the highest host PageRank of the sample."""
    from conftest import table

    root, report = sample_pipeline["root"], sample_pipeline["rank_report"]
    assert report["trusted_sources"]["domains_in_crawl"] == ["openmuseum.org"]
    hosts = {r["host"]: r for r in table(spark, root / "rank", "host_rank").collect()}
    domains = {r["domain"]: r for r in table(spark, root / "rank", "domain_rank").collect()}
    for rows in (hosts, domains):
        assert sum(r["trust"] for r in rows.values()) == pytest.approx(1.0, abs=1e-9)
        assert all(0.0 <= r["spam_mass"] <= 1.0 for r in rows.values())
    farm_hosts = [r for h, r in hosts.items() if h.endswith("bigfarm-seo.biz")]
    assert max(hosts.values(), key=lambda r: r["pagerank"])["host"] == "www.bigfarm-seo.biz"
    assert all(r["trust"] == 0.0 and r["spam_mass"] == 1.0 for r in farm_hosts)
    assert domains["bigfarm-seo.biz"]["trust"] == 0.0 and domains["bigfarm-seo.biz"]["spam_mass"] == 1.0
    assert domains["openmuseum.org"]["spam_mass"] == 0.0  # the seed: more trust than PageRank
    assert max(r["spam_mass"] for h, r in hosts.items() if not h.endswith("bigfarm-seo.biz")) < 0.5
    # host trust is networkx's personalized PageRank over the same host edges
    edges = table(spark, root / "graph", "edges").where("kind = 'host_links_to'").collect()
    graph = nx.DiGraph()
    graph.add_nodes_from(r["id"] for r in hosts.values())
    graph.add_edges_from((r["src"], r["dst"]) for r in edges)
    seeds = {r["id"] for h, r in hosts.items() if h.endswith("openmuseum.org")}
    expected = _personalized(graph, seeds, 0.85)
    assert max(abs(r["trust"] - expected[r["id"]]) for r in hosts.values()) < 1e-6
    assert report["levels"]["host_rank"]["trust"]["seeds"] == len(seeds) == 3
    # images: trust from page trust, one vote per domain; the farm's image gets none
    images = table(spark, root / "rank", "image_authority")
    assert images.agg(F.sum("trust")).first()[0] == pytest.approx(1.0, abs=1e-9)
    farm_image = images.where(F.col("best_page").contains("bigfarm-seo.biz")
                              & F.col("image_key").endswith("0119.jpg")).first()
    assert farm_image["trust"] == 0.0 and farm_image["authority"] > 0
    pages = table(spark, root / "rank", "page_rank")
    assert pages.where(F.col("domain") == "bigfarm-seo.biz").agg(F.max("trust")).first()[0] == 0.0


def test_spam_mass_flags_a_planted_link_farm(spark, tmp_path):
    """A good web of 300 domains around 5 trusted ones; a farm of 60 domains all linking to one
    target, which also holds one link from a good domain. The target's PageRank is among the top
    few, its spam mass near 1; the good domains' spam mass is lower."""
    import numpy as np
    from conftest import table

    from test_rank import _write_graph

    rng = np.random.default_rng(11)
    good = [f"good{i}.org" for i in range(300)]
    farm = [f"farm{i}.biz" for i in range(60)]
    names = good + farm + ["target.biz"]
    ids = {name: i for i, name in enumerate(names)}
    pairs = set()
    for i, name in enumerate(good):
        for j in rng.choice(300, size=6, p=(np.arange(300, 0, -1) / np.arange(300, 0, -1).sum())):
            pairs.add((ids[name], int(j)))  # preferential: low-numbered good domains are linked most
    pairs |= {(ids[f], ids["target.biz"]) for f in farm} | {(ids["target.biz"], ids[f]) for f in farm}
    pairs.add((ids["good250.org"], ids["target.biz"]))
    vertices = [(i, name, "domain", None, None, name) for name, i in ids.items()]
    _write_graph(spark, tmp_path / "graph", vertices,
                 [(a, b, "domain_links_to", 1.0) for a, b in sorted(pairs) if a != b])
    trusted = tmp_path / "trusted.yaml"
    trusted.write_text("museums: [good0.org, good1.org, good2.org, good3.org, good4.org]\n")
    from imagerank.graph.rank import RankOptions, run_rank

    report = run_rank(spark, str(tmp_path / "graph"), str(tmp_path / "rank"),
                      RankOptions(trusted_sources=str(trusted)))
    rows = {r["domain"]: r for r in table(spark, tmp_path / "rank", "domain_rank").collect()}
    by_pagerank = sorted(rows, key=lambda d: -rows[d]["pagerank"])
    assert by_pagerank.index("target.biz") < 5
    assert rows["target.biz"]["spam_mass"] > 0.95
    good_mass = np.array([rows[d]["spam_mass"] for d in good])
    assert np.median(good_mass) < 0.5 and all(rows[d]["spam_mass"] == 0.0 for d in good[:5])
    assert np.median([rows[f]["spam_mass"] for f in farm]) > 0.9
    assert report["levels"]["domain_rank"]["trust"]["seeds"] == 5
    assert report["levels"]["page_rank"]["trust"] is None  # no page vertices: trust unknown, not 0
