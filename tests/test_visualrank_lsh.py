"""VisualRank's candidates for groups over --max-group-size (issue 19): random-hyperplane LSH whose
buckets hold at most ``lsh_max_bucket`` images, so an image is compared with at most
tables x (max_bucket - 1) others whatever the group's size; the top-k recall against the exact kNN.

Vectors: clustered unit vectors (Zipf cluster sizes, a shared direction, as bench/bench_content.py
draws them) with a family of exact duplicates larger than the cap. The bucket cap is set low (64) so
that at these sizes the bound is far below n."""

from __future__ import annotations

import numpy as np
import pytest

from imagerank.content.visualrank_math import bucket_edges, clustered_vectors, knn_graph, lsh_knn, lsh_tree_cut

K = 20
TABLES, CAP, EXTRA = 12, 64, 8           # the stage's tables and extra bits; a 16th of its bucket cap
BOUND = TABLES * (CAP - 1)
MIN_COSINE = 1 - 1.2 ** 2 / 2           # 0.28: the stage's lsh_distance 1.2
DUPLICATES = 300                     # one family of exact copies, over the cap
# measured (these vectors, n = 2,000, every image a query): recall@20 0.835, similarity 0.988;
# asserted with margin
RECALL_FLOOR = 0.7
SIMILARITY_FLOOR = 0.95


def clustered(n: int, dims: int = 384, seed: int = 0, duplicates: int = DUPLICATES) -> np.ndarray:
    """The benchmark's clustered vectors (:func:`clustered_vectors`); the first ``duplicates`` are
    copies of the next one (a family of duplicates + 1)."""
    vectors = clustered_vectors(n, dims, seed)[0]
    vectors[:duplicates] = vectors[duplicates]
    return vectors


def names(n: int) -> list[str]:
    return [f"img-{i:05d}" for i in range(n)]


def recall_against_exact(vectors: np.ndarray, src, dst, weight, queries=None) -> dict:
    from imagerank.content.visualrank import recall_figures

    exact_src, _, exact_weight = knn_graph(vectors.astype(np.float64), K)
    keep = exact_weight >= MIN_COSINE
    exact, found = {}, {}
    for s, w in zip(exact_src[keep], exact_weight[keep]):
        exact.setdefault(int(s), []).append(w)
    for s, w in zip(src, weight):
        found.setdefault(int(s), []).append(w)
    if queries is not None:
        exact = {q: exact[q] for q in queries if q in exact}
    return recall_figures(exact, found, K)


@pytest.fixture(scope="module")
def vectors():
    return clustered(2000)


@pytest.fixture(scope="module")
def reference(vectors):
    return lsh_knn(vectors, K, tables=TABLES, max_bucket=CAP, extra_bits=EXTRA, min_cosine=MIN_COSINE,
                   ids=names(len(vectors)))


def test_candidates_per_image_stay_under_the_bound_and_flat_as_n_grows():
    means = {}
    for n in (1000, 4000):
        *_, stats = lsh_knn(clustered(n), K, tables=TABLES, max_bucket=CAP, extra_bits=EXTRA, min_cosine=MIN_COSINE)
        per_image = stats["candidates_per_image"]
        assert stats["bound_per_image"] == BOUND
        assert per_image.max() <= BOUND
        assert stats["candidate_pairs"] * 2 == per_image.sum()
        means[n] = per_image.mean()
    # four times the images, about the same work per image (the bucket cap, not n, sets it)
    assert 0.8 < means[4000] / means[1000] < 1.25, means
    assert means[4000] < 0.2 * 4000


def test_recall_against_the_exact_knn(vectors, reference):
    src, dst, weight, stats = reference
    figures = recall_against_exact(vectors, src, dst, weight)
    assert figures["recall_at_k"] >= RECALL_FLOOR, figures
    assert figures["similarity"] >= SIMILARITY_FLOOR, figures
    assert stats["candidates_per_image"].mean() < 0.3 * len(vectors)  # 549 of 1,999 others
    assert np.bincount(src, minlength=len(vectors)).max() <= K and (weight >= MIN_COSINE).all()


def test_a_family_of_duplicates_is_split_under_the_cap_and_counted(vectors, reference):
    src, dst, weight, stats = reference
    # no plane separates 301 identical vectors: in every table their leaf is over the cap, split in 5
    assert stats["buckets_capped"] >= TABLES
    assert stats["images_in_capped_buckets"] >= DUPLICATES * TABLES
    family = np.arange(DUPLICATES)
    assert stats["candidates_per_image"][family].max() <= BOUND
    # each copy still finds k others at cosine 1 (any k of the 300 will do)
    in_family = np.isin(src, family)
    assert np.bincount(src[in_family], minlength=DUPLICATES)[family].min() == K
    assert np.allclose(weight[in_family], 1.0)


def test_a_group_that_fits_one_bucket_is_the_exact_knn():
    vectors = clustered(200, duplicates=0)
    src, dst, weight, stats = lsh_knn(vectors, K, tables=3, max_bucket=256, min_cosine=MIN_COSINE)
    exact = bucket_edges(vectors, K, MIN_COSINE)
    assert stats["buckets"] == 3 and stats["buckets_capped"] == 0
    assert np.array_equal(src, exact[0]) and np.array_equal(dst, exact[1]) and np.allclose(weight, exact[2])


def test_the_tree_cut_takes_the_shallowest_node_under_the_cap():
    # 3 bits; leaves 000 (5 images), 001 (1), 010 (2), 100 (9), 110 (1)
    signatures, counts = np.array([0, 1, 2, 4, 6]), np.array([5, 1, 2, 9, 1])
    depth, prefix = lsh_tree_cut(signatures, counts, bits=3, max_bucket=8)
    # 0xx holds 8: one bucket; 1xx holds 10: 10x holds 9 and 100 is a leaf over the cap; 11x holds 1
    assert depth.tolist() == [1, 1, 1, 3, 2] and prefix.tolist() == [0, 0, 0, 4, 3]


SPARK_TABLES = 4                     # enough to compare the two paths; fewer Spark tasks


def test_the_distributed_path_makes_the_reference_buckets_and_edges(spark, vectors):
    """The Spark path (lsh_buckets, bucket_knn, candidate_stats, sampled_recall) against lsh_knn in one
    process: the same edges, the same counts, the same recall; a second, smaller group beside it changes
    neither (planes are drawn per table, the first ones shared by groups of every size)."""
    import pandas as pd

    from imagerank.content.visualrank import (VisualRankOptions, bucket_knn, candidate_stats, lsh_buckets,
                                              min_cosine, recall_figures, sampled_recall)

    groups = {"all": vectors, "other": clustered(300, seed=1, duplicates=0)}
    frame = pd.DataFrame({"group": [g for g, v in groups.items() for _ in v],
                          "identifier": [i for v in groups.values() for i in names(len(v))],
                          "embedding": [x.tolist() for v in groups.values() for x in v]})
    members = spark.createDataFrame(frame, "group string, identifier string, embedding array<float>")
    options = VisualRankOptions(k=K, lsh_tables=SPARK_TABLES, lsh_max_bucket=CAP, lsh_extra_bits=EXTRA,
                                recall_sample=len(frame))   # every image a query: the reference's figures
    assert min_cosine(options) == MIN_COSINE
    buckets, images, parameters = lsh_buckets(members, options)
    buckets = buckets.localCheckpoint(eager=True)
    edges = bucket_knn(buckets, images, K, MIN_COSINE).localCheckpoint(eager=True)
    got = {}
    for row in edges.collect():
        got.setdefault(row["group"], {})[(row["src"], row["dst"])] = row["weight"]

    stats, exact = {}, {}
    for group, v in groups.items():
        ids = names(len(v))
        src, dst, weight, stats[group] = lsh_knn(v, K, tables=SPARK_TABLES, max_bucket=CAP, extra_bits=EXTRA,
                                                 min_cosine=MIN_COSINE, ids=ids)
        expected = {(ids[s], ids[d]): w for s, d, w in zip(src, dst, weight)}
        assert set(got[group]) == set(expected), group
        assert max(abs(got[group][pair] - w) for pair, w in expected.items()) < 1e-9
        figures = recall_against_exact(v, src, dst, weight)
        exact[group] = figures
    assert parameters == {g: {"n": len(v), "bits": stats[g]["bits"]} for g, v in groups.items()}

    report = candidate_stats(buckets, parameters, options)
    per_image = np.concatenate([s["candidates_per_image"] for s in stats.values()])
    total = {key: sum(s[key] for s in stats.values())
             for key in ("candidate_pairs", "buckets", "buckets_capped", "images_in_capped_buckets")}
    assert report["pairs"] == total["candidate_pairs"]
    assert report["per_image_max"] == per_image.max() <= report["bound_per_image"] == SPARK_TABLES * (CAP - 1)
    assert report["per_image_mean"] == pytest.approx(per_image.mean())
    assert report["buckets"] == total["buckets"]
    assert report["buckets_capped"] == total["buckets_capped"] >= SPARK_TABLES   # the duplicates, every table
    assert report["images_in_capped_buckets"] == total["images_in_capped_buckets"]
    assert report["bits"] == {"min": stats["other"]["bits"], "max": stats["all"]["bits"]}

    recall = sampled_recall(images, edges, options)
    assert recall["sample"] == len(frame) and recall["k"] == K
    # every image a query: the figures of both groups' exact kNN, as computed here in one process
    assert recall["neighbours"] == sum(f["neighbours"] for f in exact.values())
    hits = sum(f["recall_at_k"] * f["neighbours"] for f in exact.values())
    assert recall["recall_at_k"] == pytest.approx(hits / recall["neighbours"])
    assert recall_figures({}, {}, K)["recall_at_k"] is None


def test_the_report_of_a_large_group_states_the_bound_and_the_recall(spark):
    """large_groups (the stage's distributed path) reports what its candidates cost; two PageRank
    iterations only: the ranking itself is tested against networkx in test_content.py."""
    import pandas as pd

    from imagerank.content.visualrank import VisualRankOptions, large_groups

    vectors = clustered(400, duplicates=100)
    members = spark.createDataFrame(pd.DataFrame({"group": "all", "identifier": names(len(vectors)),
                                                  "embedding": [v.tolist() for v in vectors]}),
                                    "group string, identifier string, embedding array<float>")
    options = VisualRankOptions(k=10, lsh_tables=2, lsh_max_bucket=CAP, max_iter=2, recall_sample=20)
    scores, run = large_groups(members, options)
    assert scores.count() == len(vectors)
    candidates = run["candidates"]
    assert candidates["tables"] == 2 and candidates["max_bucket"] == CAP and candidates["bound_per_image"] == 2 * 63
    assert 0 < candidates["per_image_mean"] <= candidates["per_image_max"] <= candidates["bound_per_image"]
    assert candidates["buckets_capped"] >= 2 and candidates["images_in_capped_buckets"] >= 2 * 101
    assert candidates["bits"] == {"min": 3 + 8, "max": 3 + 8}                   # ceil(log2(400 / 64)) + 8
    assert candidates["recall"]["sample"] == 20 and 0 < candidates["recall"]["recall_at_k"] <= 1
    assert run["edges"] > 0 and run["iterations"] == 2
