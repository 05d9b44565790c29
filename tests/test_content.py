"""The content stages on real photographs: embed (EXIF, embeddings, near-duplicate families) and
VisualRank, with families of near-duplicates made from the real camera photos in ../shared/data
beside unrelated real photos, and broken files among them."""

from __future__ import annotations

import importlib.util
import shutil

import networkx as nx
import numpy as np
import pytest

from conftest import report_of, requires_graphframes, shared_file, table

pytest.importorskip("cv2", reason="opencv-python-headless is not installed (the content extra)")
# Text embeddings and the learned backend need sentence-transformers (torch, several GB): make test's venv
# has it (the embed extra); make test-spark35's leaves it out, and there only those tests skip.
HAS_TEXT_MODELS = importlib.util.find_spec("sentence_transformers") is not None
needs_text_models = pytest.mark.skipif(not HAS_TEXT_MODELS, reason="sentence-transformers (torch, several GB) is "
                                       "not installed: the embed extra is in make test's venv, not in the Spark 3.5 one")

JPG = ("images", "exif-samples", "jpg")
ORIGINALS = ("nikon-e950", "fujifilm-dx10", "sony-powershota5")  # families of 7, 5 and 3
UNRELATED = ("canon-ixus", "fujifilm-finepix40i", "fujifilm-mx1700", "kodak-dc210", "kodak-dc240", "olympus-c960",
             "olympus-d320l", "ricoh-rdc5300", "sanyo-vpcg250", "sony-d700")


def photo(name: str):
    from PIL import Image, ImageOps

    return name, ImageOps.exif_transpose(Image.open(shared_file(*JPG, "exif-org", name + ".jpg"))).convert("RGB")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Families and unrelated photos as files named by identifier, a catalog, and three more rows
    whose pixels cannot be used: a real photo cut off mid-way, a missing file, an identifier that is a path."""
    import csv

    from imagerank.sample_images import write_image_sample

    root = tmp_path_factory.mktemp("photos")
    info = write_image_sample(str(root), [photo(n) for n in ORIGINALS], [photo(n) for n in UNRELATED],
                              family_sizes=[7, 5, 3], provider="camera")
    whole = shared_file(*JPG, "gps", "DSCN0012.jpg").read_bytes()
    (root / "images" / "broken.jpg").write_bytes(whole[:len(whole) // 2])  # a real photo cut off mid-way
    shutil.copy(shared_file(*JPG, "gps", "DSCN0010.jpg"), root / "images" / "with-exif.jpg")  # as the camera wrote it
    with open(info["catalog"], "a", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        for identifier in ("with-exif", "broken", "not-there", "../catalog"):
            writer.writerow([identifier, "camera", "", "", "x", "[]", "", "{}"])
    return info


@pytest.fixture(scope="module")
def signals(spark, photos, tmp_path_factory):
    from imagerank.content.embed import EmbedOptions, run_embed

    requires_graphframes(spark)
    out = str(tmp_path_factory.mktemp("signals") / "out")
    options = EmbedOptions(image_suffix=".jpg") if HAS_TEXT_MODELS else EmbedOptions(image_suffix=".jpg",
                                                                                     text_model="none")
    context = spark.sparkContext._jsc.sc()
    before = str(context.checkpointDir())  # a scala Option: None, or Some(folder)
    report = run_embed(spark, photos["catalog"], photos["images"], out, options)
    return {"out": out, "report": report, "checkpoint_dirs": (before, str(context.checkpointDir()))}


def test_every_catalog_image_is_a_feature_row_or_a_counted_skip(spark, photos, signals):
    images = signals["report"]["images"]
    assert images["catalog_rows"] == photos["rows"] + 4
    assert images["with_features"] + images["skipped"] == images["catalog_rows"]
    assert images["with_features"] == photos["rows"] + 1
    skips = {r["identifier"]: r["reason"] for r in table(spark, signals["out"], "image_skips").collect()}
    assert skips == {"not-there": "missing_file", "../catalog": "bad_identifier", "broken": "truncated"}


def test_exif_of_the_real_photos_survives_into_the_features(spark, signals):
    rows = {r["identifier"]: r for r in table(spark, signals["out"], "image_features").collect()}
    original = rows["nikon-e950-original"]
    assert (original["width"], original["height"], original["format"]) == (800, 600, "jpeg")
    # write_image_sample re-encodes the photos, so no EXIF is carried: the sample is pixels only
    assert original["make"] is None and original["gps"] is False
    assert rows["nikon-e950-resize"]["width"] == 400
    camera = rows["with-exif"]
    assert (camera["make"], camera["model"], camera["gps"]) == ("NIKON", "COOLPIX P6000", True)
    assert camera["capture_time"] == "2008-10-22T16:28:39" and camera["orientation"] == 1


def test_near_duplicate_families_name_their_original(spark, photos, signals):
    families = {r["identifier"]: r for r in table(spark, signals["out"], "families").collect()}
    for name, family in photos["families"].items():
        for member in family["members"]:
            assert families[member]["near_duplicate_of"] == family["original"], (member, families.get(member))
            assert families[member]["family_size"] == len(family["members"])
    assert not (set(photos["unrelated"]) | {"with-exif"}) & set(families)
    report = signals["report"]["near_duplicates"]
    assert report["families"] == 3 and report["images_in_families"] == 15
    # the families' connected components checkpointed under the run's own scratch folder, deleted after
    # it; the session's checkpoint folder is what it was before, not that deleted folder
    from conftest import run_dir

    assert not (run_dir(signals["out"]) / "_checkpoints").exists()
    before, after = signals["checkpoint_dirs"]
    assert after == before and "_checkpoints" not in after


def test_families_leave_nothing_persisted_once_written(spark, tmp_path):
    """GraphFrames' connectedComponents returns its result persisted (and persists an index of the
    vertices of its own): once the families are written, the function families() returns unpersists
    them, so a pipeline's later stages in the same session do not carry them."""
    from imagerank.content.families import families

    requires_graphframes(spark)
    images = spark.createDataFrame([(name, 1000, 10, 10) for name in "abcde"],
                                   "identifier string, bytes long, width int, height int")
    pairs = spark.createDataFrame([("a", "b", 0.9), ("b", "c", 0.8), ("d", "e", 0.95)],
                                  "a string, b string, similarity double")
    persisted = spark.sparkContext._jsc.getPersistentRDDs
    before = set(persisted().keySet())
    frame, release = families(spark, images, pairs, str(tmp_path / "checkpoints"))
    frame.write.parquet(str(tmp_path / "families"))
    assert set(persisted().keySet()) - before  # connectedComponents' result, at least
    release()
    assert not set(persisted().keySet()) - before
    got = {r["identifier"]: (r["family_size"], r["near_duplicate_of"])
           for r in spark.read.parquet(str(tmp_path / "families")).collect()}
    # equal pixels and bytes: the most similar member names its family (b: 0.9 + 0.8), ties the smaller id
    assert got == {"a": (3, "b"), "b": (3, "b"), "c": (3, "b"), "d": (2, "d"), "e": (2, "d")}


def test_the_families_embedding_candidates_stay_under_the_bound(spark):
    """The families' embedding LSH (VisualRank's, bounded): a near pair is found and a far one is not;
    twelve copies of one embedding (a logo a catalog holds thousands of times), which no hyperplane
    separates, pair up freely under the cap (all 66 pairs) and over it are split into buckets of at
    most the cap, each copy paired with at most cap - 1 others, and counted."""
    from imagerank.content.families import FamilyOptions, lsh_candidates, lsh_report

    rng = np.random.default_rng(5)
    unit = lambda v: (v / np.linalg.norm(v)).tolist()  # noqa: E731
    base, far, logo = rng.normal(size=16), rng.normal(size=16), rng.normal(size=16)
    rows = [("near-a", unit(base)), ("near-b", unit(base + 0.02 * rng.normal(size=16))), ("far", unit(far))]
    rows += [(f"logo-{i:02d}", unit(logo)) for i in range(12)]
    images = spark.createDataFrame(rows, "identifier string, embedding array<float>")

    def found(options):
        pairs, buckets, parameters = lsh_candidates(images, options)
        got = {tuple(r) for r in pairs.collect()}
        return got, lsh_report(buckets, parameters, options)

    free, report = found(FamilyOptions(max_bucket=100))
    logos = {pair for pair in free if pair[0].startswith("logo")}
    assert ("near-a", "near-b") in free and len(logos) == 66 and not any("far" in pair for pair in free)
    assert report["buckets_capped"] == 0 and report["bound_per_image"] == 4 * 99
    capped, report = found(FamilyOptions(max_bucket=5))
    partners = {}
    for a, b in capped:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    assert ("near-a", "near-b") in capped and not any("far" in pair for pair in capped)
    assert all(len(partners[f"logo-{i:02d}"]) <= 4 for i in range(12))
    assert report["images_in_capped_buckets"] >= 12 and report["per_image_max"] <= 4 * 4



@needs_text_models
def test_text_embeddings_come_from_the_packaged_model(spark, photos, signals):
    rows = table(spark, signals["out"], "text_embeddings").collect()
    assert len(rows) == photos["rows"] + 4
    vectors = {r["identifier"]: np.asarray(r["embedding"]) for r in rows}
    assert {len(v) for v in vectors.values()} == {384}
    assert all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors.values())
    same = vectors["nikon-e950-original"] @ vectors["nikon-e950-flip"]
    other = vectors["nikon-e950-original"] @ vectors["kodak-dc210-alone"]
    assert same > other
    assert signals["report"]["text"]["model"]["dimensions"] == 384


def test_a_learned_backend_without_a_model_says_so_and_runs_the_model_free_one(spark, photos, tmp_path):
    from imagerank.content.embed import EmbedOptions, choose_backend

    warnings: list[str] = []
    pixels, backend = choose_backend(EmbedOptions(image_backend="learned", image_model=str(tmp_path / "clip")),
                                     warnings)
    assert pixels.backend == "local" and backend["backend"] == "local"
    assert "no learned image model" in warnings[0] and "clip" in warnings[0]


@pytest.fixture(scope="module")
def ranked(spark, signals, tmp_path_factory):
    from imagerank.content.visualrank import VisualRankOptions, run_visualrank

    out = str(tmp_path_factory.mktemp("visualrank") / "out")
    report = run_visualrank(spark, signals["out"], out, VisualRankOptions(group_by="none", k=10))
    return {"out": out, "report": report}


def test_visualrank_puts_the_largest_family_first_and_its_original_at_its_top(spark, photos, ranked):
    """Measured on the sample: the largest family holds the top place and the highest mean score, every family's
    original outranks every unrelated photo, and an original is within 2% of its family's best, which
    is a lossless copy of it (a flip or quarter turn is the same image to a flip- and rotation-invariant
    similarity; a top-k graph alone would give every family the same mass per image: docs/design.md)."""
    rows = sorted(table(spark, ranked["out"], "visualrank").collect(), key=lambda r: -r["visualrank"])
    scores = {r["identifier"]: r["visualrank"] for r in rows}
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
    largest = photos["families"]["nikon-e950"]["members"]
    assert rows[0]["identifier"] in largest
    mean = {name: np.mean([scores[m] for m in f["members"]]) for name, f in photos["families"].items()}
    assert mean["nikon-e950"] > mean["fujifilm-dx10"] > np.mean([scores[u] for u in photos["unrelated"]])
    assert mean["nikon-e950"] > mean["sony-powershota5"]
    assert scores["nikon-e950-original"] > 0.98 * rows[0]["visualrank"]
    worst_original = min(scores[f["original"]] for f in photos["families"].values())
    assert worst_original > max(scores[u] for u in photos["unrelated"])
    for family in photos["families"].values():  # an original outranks its crop, the lossiest copy
        assert scores[family["original"]] > scores[family["original"].replace("original", "crop")]
    by_id = {r["identifier"]: r for r in rows}
    assert by_id["fujifilm-dx10-crop"]["near_duplicate_of"] == "fujifilm-dx10-original"
    assert by_id["fujifilm-dx10-crop"]["family_size"] == 5 and by_id["canon-ixus-alone"]["family_size"] == 1
    assert ranked["report"]["similarity"]["in_task"] == "dense" and ranked["report"]["similarity"]["local_features"]


@pytest.mark.slow  # two paths' agreement (the distributed one run on its own): the slow batch
def test_the_distributed_path_agrees_with_networkx_and_with_the_in_task_path(spark, photos, signals, ranked):
    from pyspark.sql import functions as F

    from imagerank.content.visualrank import VisualRankOptions, knn_edges, weighted_pagerank

    members = (table(spark, signals["out"], "image_embeddings")
               .select("identifier", F.lit("all").alias("group"), "embedding"))
    options = VisualRankOptions(k=10, lsh_distance=2.0, lsh_tables=8, tol=1e-12)
    edges = knn_edges(members, options).collect()
    scores, run = weighted_pagerank(members, spark.createDataFrame(edges), 0.85, 1e-12, 500)
    got = {r["identifier"]: r["visualrank"] for r in scores.collect()}
    graph = nx.DiGraph()
    graph.add_nodes_from(got)
    graph.add_weighted_edges_from((e["src"], e["dst"], e["weight"]) for e in edges)
    expected = nx.pagerank(graph, alpha=0.85, weight="weight", tol=1e-14, max_iter=1000)
    assert max(abs(got[n] - expected[n]) for n in got) < 1e-6
    assert run["converged"]
    # a threshold wide enough for every pair: the same top-k by cosine as the exact in-task computation
    from imagerank.content.visualrank_math import visualrank

    rows = sorted(members.select("identifier", "embedding").collect())
    exact, _ = visualrank(np.asarray([r["embedding"] for r in rows], dtype=np.float32), k=10)
    assert max(abs(got[r["identifier"]] - score) for r, score in zip(rows, exact)) < 1e-6


def test_the_published_table_carries_the_image_signals(spark, photos, signals, ranked, sample_pipeline, tmp_path):
    from imagerank.catalog.popularity import run_popularity
    from imagerank.catalog.publish import CONTENT_COLUMNS, run_publish

    run_popularity(spark, photos["catalog"], str(tmp_path / "pop"))
    report = run_publish(spark, photos["catalog"], str(sample_pipeline["root"] / "rank"), str(tmp_path / "pop"),
                         str(tmp_path / "table"), signals=signals["out"], visualrank=ranked["out"])
    rows = {r["identifier"]: r for r in table(spark, tmp_path / "table", "authority").collect()}
    assert set(CONTENT_COLUMNS) <= set(next(iter(rows.values())).asDict())
    crop = rows["nikon-e950-crop"]
    assert (crop["family_size"], crop["near_duplicate_of"]) == (7, "nikon-e950-original")
    assert (rows["with-exif"]["camera_make"], rows["with-exif"]["gps"]) == ("NIKON", True)
    assert rows["canon-ixus-alone"]["family_size"] == 1 and rows["canon-ixus-alone"]["near_duplicate_of"] is None
    # relative to the group's mean: family members above 1, unrelated photos below
    assert rows["nikon-e950-original"]["visualrank"] > 1 > rows["canon-ixus-alone"]["visualrank"]
    assert rows["broken"]["width"] is None and rows["broken"]["visualrank"] is None
    assert report["content"] == {"signals": True, "visualrank": True, "with_features": photos["rows"] + 1,
                                 "with_visualrank": photos["rows"] + 1}


def tiny_clip(folder) -> str:
    """A CLIP with random weights and a 16-dim projection, saved as a local sentence-transformers model:
    it proves the learned backend's plumbing (loading from a folder, encoding images in batches), not
    its quality; real weights would come from the user's own folder."""
    import json
    import os

    from sentence_transformers import SentenceTransformer, models
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    raw = os.path.join(folder, "raw")
    os.makedirs(raw)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c], vocab[c + "</w>"] = len(vocab), len(vocab) + 1
    with open(os.path.join(raw, "vocab.json"), "w") as out:
        json.dump(vocab, out)
    with open(os.path.join(raw, "merges.txt"), "w") as out:
        out.write("#version: 0.2\n")
    layer = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(text_config={"vocab_size": len(vocab), "max_position_embeddings": 32, **layer},
                        vision_config={"image_size": 32, "patch_size": 8, **layer}, projection_dim=16)
    CLIPModel(config).save_pretrained(raw)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=CLIPTokenizer(os.path.join(raw, "vocab.json"), os.path.join(raw, "merges.txt"))
                  ).save_pretrained(raw)
    path = os.path.join(folder, "clip")
    SentenceTransformer(modules=[models.CLIPModel(raw)]).save(path)
    return path


@needs_text_models
def test_the_learned_backend_runs_a_local_image_model(spark, photos, tmp_path):
    import csv

    from imagerank.content.embed import EmbedOptions, run_embed
    from imagerank.content.visualrank import VisualRankOptions, run_visualrank

    requires_graphframes(spark)
    model = tiny_clip(tmp_path / "model")
    with open(photos["catalog"], encoding="utf-8") as source:
        rows = list(csv.reader(source))
    catalog = tmp_path / "few.csv"
    with open(catalog, "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows[:6])  # the header and 5 images
    report = run_embed(spark, str(catalog), photos["images"], str(tmp_path / "signals"),
                       EmbedOptions(image_suffix=".jpg", image_backend="learned", image_model=model, text_model="none"))
    assert report["image_backend"]["backend"] == "learned" and report["warnings"] == []
    assert report["image_backend"]["model"]["path"] == model and report["image_backend"]["model"]["dimensions"] == 16
    embeddings = table(spark, tmp_path / "signals", "image_embeddings").collect()
    assert len(embeddings) == 5 and {r["backend"] for r in embeddings} == {"learned"}
    assert all(len(r["embedding"]) == 16 and abs(np.linalg.norm(r["embedding"]) - 1) < 1e-4 for r in embeddings)
    assert report["text"]["model"] is None
    ranked = run_visualrank(spark, str(tmp_path / "signals"), str(tmp_path / "vr"), VisualRankOptions(k=3))
    assert ranked["similarity"] == {"in_task": "vector", "local_features": False, "distributed": "vector"}
    scores = [r["visualrank"] for r in table(spark, tmp_path / "vr", "visualrank").collect()]
    assert len(scores) == 5 and sum(scores) == pytest.approx(1.0)


@pytest.mark.slow
def test_embed_and_visualrank_under_spark_submit_fetching_over_http(spark, photos, tmp_path):
    """As users run them: spark-submit in local-cluster mode (executors in their own processes), the
    pixels fetched from the catalog's url column off a server on loopback, one URL answering 404."""
    import csv
    import functools
    import http.server
    import threading

    from conftest import _graphframes_jar
    from test_cluster import Submitted, run_ok

    requires_graphframes(spark)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=photos["images"])
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with open(photos["catalog"], encoding="utf-8") as source:
            rows = list(csv.DictReader(source))
        rows = [r for r in rows if r["identifier"].endswith(("-original", "-alone")) or
                r["identifier"].startswith("nikon-e950")]
        for row in rows:
            row["url"] = f"{base}/{row['identifier']}.jpg"
        rows.append({**rows[0], "identifier": "gone", "url": f"{base}/gone.jpg"})
        catalog = tmp_path / "catalog.csv"
        with open(catalog, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        conf = {"spark.jars": str(_graphframes_jar())}
        embed = Submitted("embed.py", ["--catalog", str(catalog), "--images", "url", "--fetch-allow-private",
                                       "--text-model", "none", "--output", str(tmp_path / "signals")], conf=conf)
        run_ok(embed)
    finally:
        server.shutdown()
    report = report_of(tmp_path / "signals")
    assert report["master"].startswith("local-cluster")
    assert report["images"]["skipped_by_reason"] == {"http_error": 1}
    assert report["images"]["with_features"] == len(rows) - 1
    families = {r["identifier"]: r["near_duplicate_of"] for r in table(spark, tmp_path / "signals", "families").collect()}
    assert set(families) == set(photos["families"]["nikon-e950"]["members"])
    assert set(families.values()) == {"nikon-e950-original"}
    ranked = Submitted("visualrank.py", ["--signals", str(tmp_path / "signals"), "--output", str(tmp_path / "vr"),
                                         "--k", "10"], conf=conf)
    run_ok(ranked)
    top = max(table(spark, tmp_path / "vr", "visualrank").collect(), key=lambda r: r["visualrank"])
    assert top["identifier"] in families


def _plain(job: str, args: list[str]):
    """``python jobs/<job>`` as a user on a plain machine runs it: no spark-submit, no jar argument."""
    import os
    import subprocess
    import sys

    from conftest import ROOT, short_jvm_env

    env = short_jvm_env({k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_"))})
    return subprocess.run([sys.executable, str(ROOT / "jobs" / job), *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.slow  # plain processes end to end: the slow batch
def test_plain_embed_names_the_suffix_it_needs_then_embed_finds_graphframes_alone(spark, photos, tmp_path):
    """A user's first run: photos named <identifier>.jpg, no --image-suffix. Embed fails in one line
    naming the fix and commits nothing; with the suffix, embed and VisualRank run as plain processes,
    and embed finds GraphFrames' JVM classes itself (the shared jar, or IMAGERANK_GRAPHFRAMES_JAR).
    Standard output holds the JSON summary alone: Spark's log (its WARN lines) goes to standard error."""
    import csv
    import json
    import re

    requires_graphframes(spark)
    with open(photos["catalog"], encoding="utf-8") as source:
        rows = [r for r in csv.DictReader(source) if r["identifier"].startswith("nikon-e950")]
    catalog = tmp_path / "catalog.csv"
    with open(catalog, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    base = ["--catalog", str(catalog), "--images", photos["images"], "--text-model", "none",
            "--output", str(tmp_path / "signals")]
    wrong = _plain("embed.py", base)
    assert wrong.returncode == 2, wrong.stderr[-3000:]
    last = wrong.stderr.strip().splitlines()[-1]
    assert last.startswith("embed: error: not one of the catalog's 7 images was decoded (missing_file 7)"), last
    assert "pass --image-suffix .jpg" in last and photos["images"] in last and "previous output" not in last
    assert "Traceback" not in wrong.stderr and wrong.stdout == ""
    assert not (tmp_path / "signals" / "_CURRENT").exists()

    right = _plain("embed.py", base + ["--image-suffix", ".jpg"])
    assert right.returncode == 0, right.stderr[-3000:]
    assert not re.search(r"\b(WARN|INFO|ERROR)\b", right.stdout), right.stdout[:2000]
    assert json.loads(right.stdout)["images"]["with_features"] == 7
    assert report_of(tmp_path / "signals")["images"]["with_features"] == 7
    ranked = _plain("visualrank.py", ["--signals", str(tmp_path / "signals"), "--output", str(tmp_path / "vr"),
                                      "--k", "5"])
    assert ranked.returncode == 0, ranked.stderr[-3000:]
    assert table(spark, tmp_path / "vr", "visualrank").count() == 7


def test_visualrank_over_signals_without_an_image_is_an_error(spark, tmp_path):
    from conftest import write_committed
    from imagerank.content.schemas import FAMILIES, IMAGE_EMBEDDINGS
    from imagerank.content.visualrank import run_visualrank
    from imagerank.stage import StageError

    empty = spark.createDataFrame([], IMAGE_EMBEDDINGS)
    write_committed(spark, tmp_path / "signals", "embed", {
        "image_embeddings": empty,
        "families": spark.createDataFrame([], FAMILIES),
        "image_tags": spark.createDataFrame([], "identifier string, tag string")}, {})
    with pytest.raises(StageError, match="not one image has an embedding, so there is nothing to rank"):
        run_visualrank(spark, str(tmp_path / "signals"), str(tmp_path / "vr"))
    assert not (tmp_path / "vr" / "_CURRENT").exists()


@needs_text_models
def test_embed_without_images_writes_text_embeddings_alone(spark, photos, signals, tmp_path):
    """--images none: a catalog with no image files still gets its text embeddings (the popularity
    model's and the 2020 baseline's features); the image tables are there, empty, and say so."""
    from imagerank.content.embed import EmbedOptions, run_embed
    from imagerank.stage import StageError

    report = run_embed(spark, photos["catalog"], "none", str(tmp_path / "text"), EmbedOptions())
    assert report["images"] == {"catalog_rows": photos["rows"] + 4, "with_features": 0, "skipped": 0,
                                "skipped_by_reason": {}}
    assert report["source"].startswith("none") and report["near_duplicates"] is None
    for name in ("image_features", "image_skips", "image_embeddings", "near_duplicate_pairs", "families"):
        assert table(spark, tmp_path / "text", name).count() == 0, name
    alone = {r["identifier"]: r["embedding"] for r in table(spark, tmp_path / "text", "text_embeddings").collect()}
    with_images = {r["identifier"]: r["embedding"] for r in table(spark, signals["out"], "text_embeddings").collect()}
    assert alone.keys() == with_images.keys()
    assert np.allclose(alone["nikon-e950-flip"], with_images["nikon-e950-flip"], atol=1e-6)
    with pytest.raises(StageError, match="nothing to embed"):
        run_embed(spark, photos["catalog"], "none", str(tmp_path / "nothing"), EmbedOptions(text_model="none"))
