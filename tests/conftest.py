import contextlib
import functools
import itertools
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMAGERANK_SHARED_DATA", ROOT.parent / "shared" / "data"))
WARC = SHARED / "warc"

# Java options for the Spark JVMs a test starts and stops again: spark-submit's driver, application
# master and executors, and a job run as a plain process (``python jobs/x.py``). C1 alone and the
# serial collector: a JVM that lives a minute spends most of its CPU compiling with C2 code it runs a
# few times. Measured on test_train_predict_and_evaluate_under_spark_submit (three spark-submits in
# local-cluster): 211 -> 121 busy core-seconds of the machine, 118 -> 85 s; on a small application on
# YARN in client mode, 85-93 s -> 39-53 s. The test session's own JVM
# (one per pytest run) keeps the defaults: it lives long enough for C2 to pay (test_publish: no gain).
# Only the tests' command lines carry these; what users run keeps Spark's defaults.
SHORT_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def class_archive_options() -> str:
    """The Java options that map the class-data archive of Spark's classes (tests/jvm_classes.py: built
    once; a small spark-submit 40% fewer busy core-seconds, the test session's start 35%), or "" where
    it could not be built."""
    from jvm_classes import QUIET, archive

    path = archive(SHORT_JVM_OPTIONS)
    return "" if path is None else f"-XX:SharedArchiveFile={path} {QUIET}"


# The Java options of the tests' long-lived JVMs (the test session's, the demo's): C2 kept (it pays over
# minutes), the parallel collector (test_publish + test_trust fast: 158-172 busy core-seconds against
# G1's 181-185; the demo at 3 boosting rounds 135-147 against 157-166; taken in turn on a quiet host,
# 2026-12-07)
LONG_JVM_OPTIONS = "-XX:+UseParallelGC"


def long_jvm_options() -> str:
    """:data:`LONG_JVM_OPTIONS`, and the class-data archive where there is one."""
    return f"{LONG_JVM_OPTIONS} {class_archive_options()}".strip()


def short_jvm_options() -> str:
    """:data:`SHORT_JVM_OPTIONS`, and the class-data archive where there is one."""
    return f"{SHORT_JVM_OPTIONS} {class_archive_options()}".strip()


def spark_home() -> Path:
    """The installed pyspark's folder: its bin/spark-submit and jars/ (the tests' Spark installation)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def on_hadoop(item) -> bool:
    """Whether a collected test runs on the Hadoop minicluster (tests/minicluster.py): it takes the
    yarn_cluster fixture, or is marked ``hadoop`` (test_commit's hdfs store, which asks for the fixture
    by name)."""
    return "yarn_cluster" in getattr(item, "fixturenames", ()) or item.get_closest_marker("hadoop") is not None


def pytest_collection_modifyitems(config, items):
    """The tests on the Hadoop minicluster marked ``hadoop`` (``-m hadoop`` selects them, ``-m "not
    hadoop"`` leaves them out) and run last, in the order collected: its daemons (a session's
    fixture) start for them alone and stop with the session, instead of idling through the others."""
    for item in items:
        if on_hadoop(item):
            item.add_marker(pytest.mark.hadoop)
    items.sort(key=on_hadoop)


def short_jvm_env(env: dict) -> dict:
    """``env`` for a job run as a plain process: its local session's JVM starts with
    :func:`short_jvm_options`, through ``JDK_JAVA_OPTIONS`` (read by the java launcher, which says so
    in one line on standard error)."""
    return {**env, "JDK_JAVA_OPTIONS": short_jvm_options()}


def table(spark, output, name: str):
    """A table of the committed run of an output folder."""
    from imagerank import commit

    return commit.table(spark, str(output), name)


def run_dir(output) -> Path:
    """The local folder of the committed run of an output folder."""
    from imagerank import commit, fs

    return Path(fs.local_path(commit.current_run(str(output))))


def report_of(output) -> dict:
    from imagerank import commit

    return commit.read_report(str(output))


@contextlib.contextmanager
def fs_configured(settings):
    """imagerank.fs in this process configured with ``settings`` (the store a test reads: S3, HDFS)
    for the duration of a block, the earlier settings restored after it."""
    from imagerank import fs

    before = fs.current_settings()
    fs.configure(settings)
    try:
        yield
    finally:
        fs.configure(before)


def write_committed(spark, output, stage: str, tables: dict, report: dict) -> None:
    """A committed output made by hand (DataFrames as its tables), as a stage would leave it."""
    from imagerank import commit, fs

    output = fs.qualify(spark, str(output))
    run, _, _ = commit.start_run(output, stage, {})
    for name, frame in tables.items():
        frame.write.parquet(fs.join(commit.run_folder(output, run), name))
    commit.commit(output, run, stage, {"job": stage, **report})


def extracted(path, ranges=None):
    """(rows per table, counters summed, counter details) of one crawl file, extracted in plain
    Python; with ``ranges``, of the records at those (offset, length) alone."""
    from collections import Counter

    from imagerank.crawl.files import ExtractOptions, extract_file

    tables, counters, details = {"pages": [], "image_embeds": [], "page_links": []}, Counter(), {}
    for table, row in extract_file(str(path), ExtractOptions(), ranges):
        if table == "counter":
            counters[row["name"]] += row["n"]
            details[row["name"]] = row["detail"]
        else:
            tables[table].append(row)
    return tables, counters, details


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or a skip saying it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not present: {path} (../shared/data is absent outside the workspace)")
    return path


def gcs_connector_jar():
    from gcs_server import connector_jar

    return connector_jar()


def _graphframes_jar():
    from imagerank.graph.graphframes_jar import find_graphframes_jar

    return find_graphframes_jar(ROOT)


@pytest.fixture(scope="session")
def spark():
    from imagerank.postgres import DRIVER_PACKAGE
    from imagerank.spark import get_spark
    from postgres_server import binaries as postgres_binaries

    # Code generation off: the tests' tables are tiny, so compiling each query's generated Java costs
    # more than it saves (test_publish: 137 s with it, 115 s without); interpreted evaluation gives the
    # same results, and the spark-submit tests still run the jobs with Spark's defaults.
    # Adaptive execution off, for the same reason: it plans a query stage by stage, one Spark job each
    # (a publish of the sample: 113 jobs with it, 57 without; test_publish fast: 177 -> 153 busy
    # core-s). The spark-submit tests run the jobs with it, as users do, and this session shows they
    # also run where a cluster turns it off; the tests that need its partition merging kept from a
    # step already turn that off.
    extra = {"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false",
             "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
             "spark.sql.adaptive.enabled": "false"}
    extra["spark.driver.extraJavaOptions"] = long_jvm_options()
    jars = [_graphframes_jar(),  # GraphFrames' JVM classes for this Spark line, for the graphframes engine
            gcs_connector_jar()]  # Hadoop's GCS connector, for the gs:// tests (tests/gcs_server.py)
    if any(jars):
        extra["spark.jars"] = ",".join(str(jar) for jar in jars if jar is not None)
    # The PostgreSQL JDBC driver (Maven Central, through Spark's --packages resolution) where the
    # PostgreSQL tests can run: test_postgres.py reads and writes a real server from this session.
    packages = (DRIVER_PACKAGE,) if postgres_binaries() is not None else ()
    session = get_spark("imagerank-tests", master="local[2]", extra=extra, packages=packages)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def requires_graphframes(spark) -> None:
    """Skip unless GraphFrames can run in the test session: a jar built for the running Spark line was
    found (../shared/jars for Spark 4, ../shared/jars/spark3 for Spark 3.5) and put on spark.jars."""
    from imagerank.graph.graphframes_jar import JAR_ENV, graphframes_on_classpath

    pytest.importorskip("graphframes", reason="graphframes-py is not installed (the graph extra)")
    if _graphframes_jar() is None:
        if os.environ.get(JAR_ENV):
            pytest.skip(f"no GraphFrames jar: {JAR_ENV}={os.environ[JAR_ENV]} is not a file")
        pytest.skip(f"no GraphFrames jar for Spark {spark.version}: set {JAR_ENV} or put "
                    f"graphframes-*spark{spark.version[0]}_*.jar in {ROOT.parent / 'shared' / 'jars'}")
    if not graphframes_on_classpath(spark):
        pytest.skip("GraphFrames' JVM classes are not on the test session's classpath (a session started "
                    "before the jar was found?)")


# A folder where pytest runs of one checkout and one environment (CI's several runs per Spark line) build the
# sample crawl and the reference pipeline once and share them: set by .ci/run, unset by default.
CACHE_ENV = "IMAGERANK_TEST_CACHE"


@functools.cache  # hashed once per pytest run, not once per fixture
def _cache_key() -> str:
    """What the sample and the reference pipeline are made from: imagerank's sources and configuration,
    this file, the Python and every installed distribution's version (pyspark's among them)."""
    import hashlib
    import importlib.metadata
    import sys

    digest = hashlib.sha256(sys.version.encode())
    for path in sorted((ROOT / "lib" / "imagerank").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    digest.update(Path(__file__).read_bytes())
    for version in sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()):
        digest.update(version.encode())
    return digest.hexdigest()[:20]


@contextlib.contextmanager
def _built_once(tmp_path_factory, name: str):
    """(folder, built): the folder where a session fixture's ``name`` lives, and whether it is there
    already. Without $IMAGERANK_TEST_CACHE, a new temporary folder, or, under pytest-xdist's workers,
    one folder of the run's temporary folder that they share. With it, a folder under it named by
    :func:`_cache_key`, held under a file lock while it is built or read (a second pytest run waits for
    the first's build); a build that did not finish (failed, killed) is removed and made again."""
    import fcntl
    import shutil

    cache = os.environ.get(CACHE_ENV)
    if not cache and os.environ.get("PYTEST_XDIST_WORKER"):
        # make test's workers (pytest-xdist): one build for all of them, in the run's own temporary folder
        cache = str(tmp_path_factory.getbasetemp().parent / "built-once")
    if not cache:
        yield tmp_path_factory.mktemp(name), False
        return
    base = Path(cache) / _cache_key()
    base.mkdir(parents=True, exist_ok=True)
    folder, done = base / name, base / f"{name}.done"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            yield folder, True
            return
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        yield folder, False
        done.touch()  # only after the build returned


@pytest.fixture(scope="session")
def sample_crawl(tmp_path_factory):
    import json

    from imagerank.sample import write_sample

    with _built_once(tmp_path_factory, "sample") as (out, built):
        if built:
            info = json.loads((out / "info.json").read_text())
        else:
            info = write_sample(str(out / "crawl"))
            (out / "info.json").write_text(json.dumps(info))
    info["root"] = out / "crawl"
    return info


def write_config(path: Path, root: str, crawl_manifest: str, catalog: str, trusted_sources: str) -> str:
    """A pipeline configuration (conf/pipeline.yaml's shape) for the sample crawl, its catalog and its
    trusted sources (TrustRank's seeds)."""
    import yaml

    path.write_text(yaml.safe_dump({
        "output_root": root,
        "extract": {"input": [crawl_manifest]},
        "graph": {},
        "rank": {"trusted_sources": trusted_sources},
        "popularity": {"catalog": catalog},
        "publish": {},
    }))
    return str(path)


@pytest.fixture(scope="session")
def reference(spark, sample_crawl, tmp_path_factory):
    """The whole pipeline on the sample (jobs/pipeline.py's run_pipeline, conf/pipeline.yaml's stages
    with the sample's trusted sources), in this test process's own session (local mode), once for the
    session (once for all of CI's runs of one Spark line: $IMAGERANK_TEST_CACHE): what every run of it
    elsewhere (spark-submit, YARN, S3, HDFS) must give, and the tables the tests of each stage examine
    (sample_pipeline, sample_published)."""
    from imagerank.pipeline import run_pipeline

    with _built_once(tmp_path_factory, "reference") as (root, built):
        if not built:
            config = write_config(root / "pipeline.yaml", str(root / "out"), sample_crawl["manifest"],
                                  sample_crawl["catalog"], sample_crawl["trusted_sources"])
            run_pipeline(spark, config)
    return {"root": str(root / "out"), "crawl": sample_crawl}


@pytest.fixture(scope="session")
def sample_pipeline(reference):
    """The reference run's extract, graph and rank (their folders under ``root``, and their reports):
    what test_extract_job, test_build_graph and test_rank examine. Read, never written."""
    root = Path(reference["root"])
    crawl = reference["crawl"]
    return {"root": root, "rank_report": report_of(root / "rank"), "catalog": crawl["catalog"],
            "extract_report": report_of(root / "extract"), "graph_report": report_of(root / "graph")}


@pytest.fixture(scope="session")
def sample_published(sample_pipeline):
    """The reference run's popularity and publish (sample_pipeline's root: popularity, table): what
    test_publish examines and test_evaluate evaluates."""
    root = sample_pipeline["root"]
    return {"root": root, "report": report_of(root / "table")}


def most_shuffle_rows_per_task(spark, action) -> int:
    """Run ``action()`` and return the largest number of shuffled rows any one of its tasks read:
    a step that gathers a whole table (or a whole group) into one task shows as that table's size.
    Read from Spark's status store (per-task metrics), so it needs no UI."""
    sc = spark.sparkContext
    group = f"shuffle-probe-{next(_probe_ids)}"
    sc.setJobGroup(group, group)
    try:
        action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    context = sc._jsc.sc()
    context.listenerBus().waitUntilEmpty()
    store = context.statusStore()
    most = 0
    for job in sc.statusTracker().getJobIdsForGroup(group):
        for stage in sc.statusTracker().getJobInfo(job).stageIds:
            tasks = store.taskList(stage, 0, 1_000_000)
            for i in range(tasks.size()):
                metrics = tasks.apply(i).taskMetrics()
                if metrics.isDefined():
                    most = max(most, metrics.get().shuffleReadMetrics().recordsRead())
    return most


_probe_ids = itertools.count()


@contextlib.contextmanager
def sql_conf(spark, settings: dict):
    """Runtime SQL settings for the duration of a block, restored after it."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


@contextlib.contextmanager
def hadoop_conf(spark, settings: dict):
    """The session's Hadoop configuration with ``settings`` (a value None: unset) for the duration of a
    block, each key restored after it; yields the configuration, for changes inside the block."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    before = {key: conf.get(key) for key in settings}
    for key, value in settings.items():
        conf.unset(key) if value is None else conf.set(key, value)
    try:
        yield conf
    finally:
        for key, value in before.items():
            conf.unset(key) if value is None else conf.set(key, value)
