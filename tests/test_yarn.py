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
from pathlib import Path

import pytest

from conftest import spark_home
from minicluster import HERE, app_id_from, yarn_cluster  # noqa: F401 (yarn_cluster: the fixture)

pytestmark = pytest.mark.slow  # spark-submit end to end: the slow batch (make test-slow)

ROOT = Path(__file__).resolve().parents[1]
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


def _pipeline_on_hdfs(yarn_cluster, crawl, tmp_path, name: str) -> tuple[str, str]:
    """The sample crawl, its catalog, its trusted sources and a pipeline configuration on HDFS under
    /<name>: (root, config URI)."""
    from conftest import write_config

    root = f"/{name}-{os.getpid()}"
    yarn_cluster.put(crawl["root"], root + "/sample")
    on_hdfs = {key: _sample_on_hdfs(yarn_cluster, root, crawl, crawl[key])
               for key in ("manifest", "catalog", "trusted_sources")}
    config = write_config(tmp_path / "pipeline.yaml", yarn_cluster.uri(root + "/out"), on_hdfs["manifest"],
                          on_hdfs["catalog"], on_hdfs["trusted_sources"])
    return root, yarn_cluster.put(config, root + "/pipeline.yaml")


def _sample_on_hdfs(yarn_cluster, root: str, crawl, local) -> str:
    """The hdfs:// URI of a file of the sample crawl, copied under ``root``/sample by :func:`_pipeline_on_hdfs`."""
    return yarn_cluster.uri(f"{root}/sample/{os.path.relpath(local, crawl['root'])}")


def _reading_hdfs(yarn_cluster):
    """imagerank.fs in this process reading the cluster's HDFS (over WebHDFS), as a driver there would."""
    from conftest import fs_configured

    return fs_configured(yarn_cluster.fs_settings())


@pytest.fixture(scope="module")
def packed_env(tmp_path_factory):
    """`make dist` for the running Spark line: the wheel, the jobs and the packed Python environment
    (dist/imagerank-env.tar.gz) that conf/submit-yarn.sh ships with --archives; built from PyPI once a
    session, into a gateway folder of its own (dist/ and a link to jobs/, the paths the template names)."""
    import pyspark

    gateway = tmp_path_factory.mktemp("gateway")
    line = "3.5" if pyspark.__version__.startswith("3.") else "4"
    started = time.monotonic()
    # the wheel's build in the checkout (build/, lib/imagerank.egg-info) takes make's lock (both Spark lines
    # pack at once in .ci/run, beside the other line's editable install); the env is built in the gateway
    done = subprocess.run(["make", "-s", "dist", f"SPARK={line}", f"DIST={gateway / 'dist'}",
                           f"DIST_BUILD={gateway / 'build'}", f"PYTHON={sys.executable}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(text in output for text in ("Could not find a version", "No matching distribution",
                                           "Failed to establish a new connection")):
            pytest.skip("make dist could not reach PyPI for the packed environment: " + output[-500:])
        raise AssertionError(f"make dist SPARK={line} failed:\n{output[-4000:]}")
    (gateway / "jobs").symlink_to(ROOT / "jobs")
    print(f"\n[yarn] make dist SPARK={line}: {time.monotonic() - started:.0f} s, env "
          f"{(gateway / 'dist' / 'imagerank-env.tar.gz').stat().st_size / 1e6:.0f} MB", file=sys.stderr)
    return gateway


def _submit_template(yarn_cluster, gateway, env: dict, stages: tuple[str, ...]) -> str:
    """conf/submit-yarn.sh run from ``gateway`` with ``env`` (its CONFIG), for ``stages``; the application's
    id, once every stage has committed (the containers' logs in the error where it failed)."""
    started = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "conf" / "submit-yarn.sh"), "--stages", ",".join(stages)],
                          cwd=gateway, env=env, capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    app_id = app_id_from(log)
    if done.returncode != 0:
        containers = yarn_cluster.app_logs(app_id) if app_id else {}
        details = "\n".join(f"--- {name}\n{text[-3000:]}" for name, text in containers.items())
        raise AssertionError(f"conf/submit-yarn.sh exited {done.returncode}:\n{log[-4000:]}\n{details}")
    print(f"\n[yarn] conf/submit-yarn.sh: {','.join(stages)} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    driver_log = "\n".join(text for name, text in yarn_cluster.app_logs(app_id).items() if name.endswith("/stdout"))
    for stage in stages:
        assert f"[{stage}] committed run" in driver_log, driver_log[-3000:]
    return app_id


def test_the_readme_yarn_template_runs_the_pipeline_on_hdfs(yarn_cluster, packed_env, spark, reference, tmp_path):  # noqa: F811
    """The pipeline as an operator runs it on EMR or Dataproc: conf/submit-yarn.sh as it stands (cluster
    mode, the env from `make dist` shipped by --archives), its configuration, crawl, catalog and outputs
    on hdfs://, the cluster's own settings in spark-defaults.conf. Every stage's tables equal the
    in-process run's, every report names yarn as its master, and Spark's event log, read back, holds
    the --conf values the template gives on the command line.

    Then next month's run (README, "Next month"), on the same cluster and outputs: records selected
    through a columnar index on HDFS (range reads in the containers), the graph built with
    ``--previous`` into the graph's own folder, and rank warm-started from its own folder's current
    run: the same tables as those commands in this process."""
    from conftest import report_of
    from test_cluster import TABLES, assert_same_tables

    from imagerank import fs

    crawl = reference["crawl"]
    root, config = _pipeline_on_hdfs(yarn_cluster, crawl, tmp_path, "template")
    yarn_cluster.mkdir("/spark-events")
    # what the cluster's spark-defaults.conf holds (EMR and Dataproc write theirs), the Python left to the template
    defaults = {key: value for key, value in yarn_cluster.spark_conf().items() if not key.startswith("spark.pyspark.")}
    defaults.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": yarn_cluster.uri("/spark-events"),
                     "spark.eventLog.compress": "false",  # Spark 4 writes zstd by default; read back as JSON lines
                     "spark.sql.shuffle.partitions": "5"})
    spark_conf_dir = tmp_path / "spark-conf"
    spark_conf_dir.mkdir()
    (spark_conf_dir / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in defaults.items()))
    env = {**os.environ, **yarn_cluster.env(), "SPARK_CONF_DIR": str(spark_conf_dir), "CONFIG": config,
           "HADOOP_AWS": "",  # no s3a:// here
           "PATH": f"{spark_home() / 'bin'}{os.pathsep}{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    app_id = _submit_template(yarn_cluster, packed_env, env, ("extract", "graph", "rank", "popularity", "publish"))
    with _reading_hdfs(yarn_cluster):
        seconds = {}
        for folder in TABLES:
            report = report_of(yarn_cluster.uri(f"{root}/out/{folder}"))
            assert report["master"] == "yarn" and report["app_id"] == app_id
            assert report["shuffle_partitions"] == 5 and report["output"].startswith("hdfs://")
            seconds[folder] = f"{report['seconds']:.0f} s, {report['spark']['jobs']} jobs"
        print(f"[yarn] the pipeline's stages: {seconds}", file=sys.stderr)
        # the same rows, the crawl files' paths aside (read from HDFS here)
        assert_same_tables(spark, yarn_cluster.uri(root + "/out"), reference["root"],
                           moved=(yarn_cluster.uri(root + "/sample"), str(crawl["root"])))
        # a file (Spark 3.5), or a folder of rolled files eventlog_v2_<app>/events_N_<app> (Spark 4); the
        # environment comes among the first events: read each log's first 8 MB, whole lines only
        logs = [entry["path"] for entry in yarn_cluster.lsr("/spark-events")
                if app_id in entry["path"] and "appstatus" not in entry["path"].rsplit("/", 1)[-1]]
        events = []
        for event_log in logs:
            with fs.open_input(event_log) as stream:
                head = stream.read(8 << 20).decode("utf-8", "replace")
            events += [json.loads(line) for line in head.splitlines()[:-1] if line.strip()]
    (environment,) = [e for e in events if e["Event"] == "SparkListenerEnvironmentUpdate"]
    properties = environment["Spark Properties"]
    properties = dict(properties) if isinstance(properties, list) else properties
    # the template's command line, and the cluster's defaults beneath it
    assert properties["spark.sql.session.timeZone"] == "UTC"
    assert properties["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert properties["spark.pyspark.python"] == "./environment/bin/python"
    assert properties["spark.submit.deployMode"] == "cluster" and properties["spark.master"] == "yarn"
    assert properties["spark.sql.shuffle.partitions"] == "5"
    assert "imagerank-env.tar.gz#environment" in properties["spark.yarn.dist.archives"]

    _next_month(yarn_cluster, packed_env, env, spark, reference, root, tmp_path)


def _next_month(yarn_cluster, gateway, env, spark, reference, root: str, tmp_path) -> None:
    """Next month's extract (through a columnar index), graph (--previous) and rank (--warm-start) on
    the template's outputs under ``root`` on HDFS, against the same in this process on the reference's."""
    import yaml
    from conftest import report_of, table
    from test_cc_index import write_index
    from test_cluster import TABLES, assert_same_tables

    from imagerank.pipeline import run_pipeline

    crawl = reference["crawl"]
    # the index: the sample's WARC records as the reference's extraction found them (the sample's files
    # hold broken records on purpose, which a WARC reader stops at; extraction reads past them)
    prefix = str(crawl["root"]) + "/"
    rows = [{"url": row["url"], "url_host_name": row["host"], "url_host_registered_domain": row["domain"],
             "fetch_status": row["status"], "content_mime_type": "text/html", "content_mime_detected": "text/html",
             "warc_filename": row["warc_filename"][len(prefix):], "warc_record_offset": row["warc_record_offset"],
             "warc_record_length": row["warc_record_length"], "crawl": row["crawl"], "subset": "warc"}
            for row in table(spark, reference["root"] + "/extract", "pages").collect()
            if row["warc_record_length"] is not None and row["warc_filename"].startswith(prefix)]
    domains = sorted({row["url_host_registered_domain"] for row in rows} - {None})
    chosen = domains[::2]  # every other domain's pages: a part of each file
    where = "url_host_registered_domain IN ({})".format(", ".join(f"'{domain}'" for domain in chosen))
    selected = sum(row["url_host_registered_domain"] in chosen for row in rows)
    assert 0 < selected < len(rows) and {row["warc_filename"] for row in rows} == {
        f"crawl/CC-MAIN-2099-01/CC-MAIN-2099-01-0000{part}.warc.gz" for part in (0, 1)}
    index = write_index(spark, rows, tmp_path / "index")
    folders = {"extract-next": TABLES["extract"], "graph": TABLES["graph"], "rank": TABLES["rank"]}

    def config(out: str, index_path: str, base: str, previous: str, sources: str) -> dict:
        return {"output_root": out,
                "extract": {"cc_index": index_path, "index_filter": where, "input_base_url": base,
                            "output": f"{out}/extract-next"},
                "graph": {"previous": f"{previous}/graph"},
                "rank": {"trusted_sources": sources, "warm_start": f"{previous}/rank"}}

    # in this process: from the reference's graph and ranks, into a folder of its own
    local = tmp_path / "next"
    (tmp_path / "next.yaml").write_text(yaml.safe_dump(config(str(local), index, str(crawl["root"]) + "/",
                                                              reference["root"], crawl["trusted_sources"])))
    run_pipeline(spark, str(tmp_path / "next.yaml"), stages=["extract", "graph", "rank"])
    # on YARN: into the template run's own folders, which it reads as it writes them
    out = yarn_cluster.uri(root + "/out")
    on_hdfs = config(out, yarn_cluster.put(index, root + "/index"), yarn_cluster.uri(root + "/sample") + "/", out,
                     _sample_on_hdfs(yarn_cluster, root, crawl, crawl["trusted_sources"]))
    (tmp_path / "next-hdfs.yaml").write_text(yaml.safe_dump(on_hdfs))
    env = {**env, "CONFIG": yarn_cluster.put(tmp_path / "next-hdfs.yaml", root + "/next.yaml")}
    _submit_template(yarn_cluster, gateway, env, ("extract", "graph", "rank"))
    with _reading_hdfs(yarn_cluster):
        extracted, graph, ranked = (report_of(f"{out}/{folder}") for folder in ("extract-next", "graph", "rank"))
        assert extracted["cc_index"]["records_selected"] == extracted["cc_index"]["records_read"] == selected
        assert extracted["cc_index"]["records_failed"] == 0
        assert [entry["input"] for entry in graph["extractions"]] == [f"{out}/extract", f"{out}/extract-next"]
        cold = report_of(reference["root"] + "/rank")["levels"]  # last month's, from the teleport
        for level in ("page_rank", "host_rank", "domain_rank"):
            warm = ranked["levels"][level]["pagerank"]
            assert warm["warm_start"]["vertices_with_start"] > 0 and warm["converged"], ranked["levels"]
            assert warm["iterations"] < cold[level]["pagerank"]["iterations"], (level, warm, cold[level])
        print("[yarn] next month's PageRank iterations, warm (last month's, cold): " + ", ".join(
            f"{level} {ranked['levels'][level]['pagerank']['iterations']} ({cold[level]['pagerank']['iterations']})"
            for level in cold), file=sys.stderr)
        assert_same_tables(spark, out, str(local), folders=folders,
                           moved=(yarn_cluster.uri(root + "/sample"), str(crawl["root"])))


def _python_workers(pid: int) -> list[int]:
    """The Python processes an executor JVM started (pyspark.daemon, and the workers it forks): a Python
    task has started on that executor once there is one."""
    children, found = {}, []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_a_pipeline_on_yarn_loses_an_executor_then_is_killed_and_resumes_to_the_same_tables(
        yarn_cluster, spark, reference, tmp_path):  # noqa: F811
    """The pipeline on YARN (client mode). Mid-extraction, once a crawl file's task runs in the executor's
    Python, the executor's container is killed (SIGKILL): YARN starts another and the lost task runs again.
    Once the graph stage has started, the application is killed through the ResourceManager (as `yarn
    application -kill` or a scheduler's timeout does), then rerun with --resume: the extraction is kept
    (skipped, the same run), its report counts what the in-process run's counts, and every table equals
    the in-process run's."""
    from conftest import report_of
    from test_cluster import Submitted, assert_same_tables, run_ok

    from imagerank import commit
    from imagerank.crawl.extract import FILES

    crawl = reference["crawl"]
    root, config = _pipeline_on_hdfs(yarn_cluster, crawl, tmp_path, "resumed")
    conf = yarn_cluster.spark_conf()
    first = Submitted("pipeline.py", ["--config", config], conf=conf, env=yarn_cluster.env(), master="yarn")
    runs = root + "/out/extract/_runs"

    def files_done() -> int:
        try:
            return sum(1 for entry in yarn_cluster.lsr(runs) if f"/{FILES}/" in entry["path"])
        except OSError:  # no run folder yet
            return 0

    def running_executor() -> int | None:
        app_id = app_id_from(first.log(last=400))
        executors = [pid for pid, kind in yarn_cluster.container_pids(app_id).items() if kind == "executor"] \
            if app_id else []
        return next((pid for pid in executors if _python_workers(pid)), None)

    first.wait_for(lambda: first.saw("[extract] started") and running_executor() is not None, timeout=600)
    os.kill(running_executor(), signal.SIGKILL)
    assert files_done() < len(crawl["files"])  # the extraction goes on without it
    first.wait_for(lambda: first.saw("[graph] started"), timeout=600)
    app_id = app_id_from(first.log(last=400))
    yarn_cluster.kill(app_id)
    assert first.finish(300) != 0, first.log()
    assert yarn_cluster.app(app_id)["state"] == "KILLED"
    assert first.saw("ExecutorLostFailure") or first.saw("Lost executor"), first.log(last=400)
    assert first.saw("SparkContext should exit with code 1"), first.log(last=400)  # SUBMIT_DEFAULTS
    with _reading_hdfs(yarn_cluster):
        extract_run = commit.marker(yarn_cluster.uri(root + "/out/extract"))["run"]
        assert commit.marker(yarn_cluster.uri(root + "/out/rank")) is None
    again = Submitted("pipeline.py", ["--config", config, "--resume"], conf=conf, env=yarn_cluster.env(),
                      master="yarn")
    run_ok(again, timeout=900)
    assert again.saw("[extract] skipped"), again.log()
    with _reading_hdfs(yarn_cluster):
        assert commit.marker(yarn_cluster.uri(root + "/out/extract"))["run"] == extract_run
        got, expected = report_of(yarn_cluster.uri(root + "/out/extract")), report_of(reference["root"] + "/extract")
        assert got["master"] == "yarn" and got["app_id"] == app_id
        for key in ("files", "rows_written", "skipped"):
            assert got[key] == expected[key], key
        assert_same_tables(spark, yarn_cluster.uri(root + "/out"), reference["root"],
                           moved=(yarn_cluster.uri(root + "/sample"), str(crawl["root"])))
