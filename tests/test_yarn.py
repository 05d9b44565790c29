"""pyspark's own spark-submit on YARN: real Hadoop daemons (tests/minicluster.py: a ResourceManager and a
NodeManager, a NameNode and a DataNode) and an application that reads from hdfs:// and writes Parquet back
to hdfs://, in client and in cluster deploy mode.

The cluster takes 15-30 s to start (once a session, plus a one-time Maven download of about 100 MB);
each submit about a minute, mostly Spark's and YARN's start-up. Timings are printed (pytest -s) and
recorded as test properties (--junitxml).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from minicluster import HERE, app_id_from, spark_home, yarn_cluster  # noqa: F401 (yarn_cluster: the fixture)

pytestmark = pytest.mark.slow  # spark-submit end to end: the slow batch (make test-slow)

SCRIPT = HERE / "hdfs_to_parquet.py"
LINES = ["the quick brown fox", "jumps over the lazy dog", "the end of the line"]


def spark_submit(cluster, deploy_mode: str, args: list[str], cwd, timeout: float = 600.0):
    """Run spark-submit --master yarn; (exit code, output, seconds)."""
    command = [str(spark_home() / "bin" / "spark-submit"), "--master", "yarn", "--deploy-mode", deploy_mode]
    for key, value in cluster.spark_conf().items():
        command += ["--conf", f"{key}={value}"]
    command += [str(SCRIPT), *args]
    env = {**os.environ, **cluster.env(), "PYTHONUNBUFFERED": "1"}
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # spark-submit's JVM and its Python driver
        output, _ = process.communicate()
        raise AssertionError(f"spark-submit ran over {timeout:.0f} s:\n{output[-6000:]}") from None
    return process.returncode, output, time.monotonic() - started


@pytest.fixture(scope="module")
def lines_on_hdfs(yarn_cluster, tmp_path_factory):
    local = tmp_path_factory.mktemp("yarn-input") / "lines.txt"
    local.write_text("\n".join(LINES) + "\n")
    return yarn_cluster.put(local, "/input/lines.txt")


def test_hdfs_helpers_round_trip(yarn_cluster, tmp_path):
    local = tmp_path / "hello.txt"
    local.write_text("hello hdfs\n")
    uri = yarn_cluster.put(local, "/helpers/hello.txt")
    assert uri == yarn_cluster.uri("/helpers/hello.txt") and uri.startswith("hdfs://127.0.0.1:")
    assert yarn_cluster.exists("/helpers/hello.txt")
    assert yarn_cluster.cat("/helpers/hello.txt") == "hello hdfs\n"
    assert [(entry["path"], entry["dir"], entry["size"]) for entry in yarn_cluster.ls("/helpers")] == [(uri, False, 11)]
    assert yarn_cluster.get("/helpers/hello.txt", tmp_path / "back.txt").read_text() == "hello hdfs\n"
    assert yarn_cluster.rm("/helpers") and not yarn_cluster.exists("/helpers")
    with pytest.raises(OSError, match="FileNotFoundException"):
        yarn_cluster.cat("/helpers/hello.txt")
    for name in ("core-site.xml", "hdfs-site.xml", "yarn-site.xml", "capacity-scheduler.xml"):
        assert (yarn_cluster.conf_dir / name).is_file()
    assert yarn_cluster.hdfs_uri in (yarn_cluster.conf_dir / "core-site.xml").read_text()


@pytest.mark.parametrize("deploy_mode", ["client", "cluster"])
def test_spark_submit_on_yarn_reads_and_writes_hdfs(yarn_cluster, lines_on_hdfs, deploy_mode, tmp_path,
                                                    record_property):
    import pyarrow.parquet as pq

    output = f"/out/{deploy_mode}"
    code, log, seconds = spark_submit(yarn_cluster, deploy_mode, [lines_on_hdfs, yarn_cluster.uri(output)],
                                      cwd=tmp_path)
    app_id = app_id_from(log)
    if code != 0:
        app = yarn_cluster.app(app_id) if app_id else None
        containers = yarn_cluster.app_logs(app_id) if app_id else {}
        details = "\n".join(f"--- {name}\n{text[-3000:]}" for name, text in containers.items())
        raise AssertionError(f"spark-submit --deploy-mode {deploy_mode} exited {code}:\n{log[-6000:]}\n"
                             f"application: {app}\ncontainer logs:\n{details}")

    (info_file,) = [entry["path"] for entry in yarn_cluster.lsr(f"{output}/info")
                    if entry["path"].rsplit("/", 1)[1].startswith("part-")]
    info = json.loads(yarn_cluster.cat(info_file))
    # the application ran on this YARN cluster, not in local mode
    assert info["master"] == "yarn" and info["spark.master"] == "yarn", info
    assert info["deploy_mode"] == deploy_mode
    assert info["app_id"].startswith("application_") and info["app_id"] == app_id
    assert info["default_fs"] == yarn_cluster.hdfs_uri
    assert info["worker_containers"] and all(c and c.startswith("container_") for c in info["worker_containers"])
    assert info["worker_pythons"] == [sys.executable]
    if deploy_mode == "cluster":
        assert info["driver_container"].startswith(f"container_{info['app_id'][len('application_'):]}")
        # cluster mode: the driver's output is in its container's log, on the NodeManager
        driver_log = yarn_cluster.app_logs(info["app_id"])[f"{info['driver_container']}/stdout"]
        assert "YARN-SMOKE" in driver_log
    else:
        assert info["driver_container"] is None
        assert "YARN-SMOKE" in log  # client mode: the driver's output is spark-submit's own
    app = yarn_cluster.app(info["app_id"])
    assert (app["type"], app["state"], app["final_status"]) == ("SPARK", "FINISHED", "SUCCEEDED"), app
    assert app["queue"] in ("default", "root.default"), app

    local = yarn_cluster.get(f"{output}/words", tmp_path / "words")
    words = pq.read_table(local).to_pydict()
    expected = collections.Counter(word for line in LINES for word in line.split())
    assert dict(zip(words["word"], words["count"])) == expected

    timings = {"cluster_start_s": round(yarn_cluster.timings["start_s"], 1),
               f"submit_{deploy_mode}_s": round(seconds, 1), "daemons_rss_mb": yarn_cluster.rss_mb()}
    for key, value in timings.items():
        record_property(key, value)
    print(f"\n[yarn] {deploy_mode} mode: spark-submit {seconds:.1f} s; {timings}", file=sys.stderr)


def test_the_pipeline_on_yarn_reads_and_writes_hdfs(yarn_cluster, spark, reference, tmp_path):  # noqa: F811
    """The pipeline as an operator runs it on EMR or Dataproc: spark-submit --master yarn in cluster
    mode, its configuration, crawl, catalog and outputs all on hdfs://. Every stage's tables equal the
    in-process run's, every report names yarn as its master, and Spark's event log, read back, holds
    the --conf values given on the command line."""
    from conftest import report_of, write_config
    from test_cluster import TABLES, Submitted, assert_same_tables, run_ok

    from imagerank import fs

    crawl = reference["crawl"]
    root = f"/pipeline-{os.getpid()}"
    yarn_cluster.put(crawl["root"], root + "/sample")
    relative = os.path.relpath
    config = write_config(tmp_path / "pipeline.yaml", yarn_cluster.uri(root + "/out"),
                          yarn_cluster.uri(f"{root}/sample/{relative(crawl['manifest'], crawl['root'])}"),
                          yarn_cluster.uri(f"{root}/sample/{relative(crawl['catalog'], crawl['root'])}"))
    yarn_cluster.put(config, root + "/pipeline.yaml")
    yarn_cluster.mkdir("/spark-events")
    conf = {**yarn_cluster.spark_conf(), "spark.submit.deployMode": "cluster", "spark.sql.shuffle.partitions": "5",
            "spark.eventLog.enabled": "true", "spark.eventLog.dir": yarn_cluster.uri("/spark-events"),
            "spark.eventLog.compress": "false",  # Spark 4 writes zstd by default; read back as plain JSON lines
            "spark.imagerank.commit.heartbeat": "7s"}
    job = Submitted("pipeline.py", ["--config", yarn_cluster.uri(root + "/pipeline.yaml")], conf=conf,
                    env=yarn_cluster.env(), master="yarn")
    run_ok(job, timeout=900)
    app_id = app_id_from(job.log(last=400))
    before = fs.current_settings()
    fs.configure(yarn_cluster.fs_settings())
    try:
        for folder in TABLES:
            report = report_of(yarn_cluster.uri(f"{root}/out/{folder}"))
            assert report["master"] == "yarn" and report["app_id"] == app_id
            assert report["shuffle_partitions"] == 5 and report["output"].startswith("hdfs://")
        # the same rows, the crawl files' paths aside (read from HDFS here)
        assert_same_tables(spark, yarn_cluster.uri(root + "/out"), reference["root"],
                           moved=(yarn_cluster.uri(root + "/sample"), str(crawl["root"])))
        # a file (Spark 3.5), or a folder of rolled files eventlog_v2_<app>/events_N_<app> (Spark 4); the
        # environment comes among the first events: read each log's first 8 MB, whole lines only
        logs = [entry["path"] for entry in yarn_cluster.lsr("/spark-events")
                if app_id in entry["path"] and "appstatus" not in entry["path"].rsplit("/", 1)[-1]]
        events = []
        for log in logs:
            with fs.open_input(log) as stream:
                head = stream.read(8 << 20).decode("utf-8", "replace")
            events += [json.loads(line) for line in head.splitlines()[:-1] if line.strip()]
    finally:
        fs.configure(before)
    (environment,) = [e for e in events if e["Event"] == "SparkListenerEnvironmentUpdate"]
    properties = environment["Spark Properties"]
    properties = dict(properties) if isinstance(properties, list) else properties
    assert properties["spark.sql.shuffle.partitions"] == "5"
    assert properties["spark.imagerank.commit.heartbeat"] == "7s"
    assert properties["spark.submit.deployMode"] == "cluster" and properties["spark.master"] == "yarn"
