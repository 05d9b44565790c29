"""The commit protocol (imagerank.commit) with concurrent writers, readers, retries and resumes, on a
local disk, on an S3 server on loopback (moto), on Cloud Storage's API on loopback (fake-gcs-server)
and on HDFS, and through real extractions racing in Spark."""

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import fs_configured, hadoop_conf
from imagerank import commit, fs
from minicluster import yarn_cluster  # noqa: F401 - the session's HDFS

STAGE = "extract"


@pytest.fixture(scope="module")
def s3_root():
    """A bucket on a moto S3 server on 127.0.0.1, and the fs settings that reach it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="runs")
    yield "s3://runs", fs.FsSettings(s3_endpoint=endpoint, s3_region="us-east-1", s3_path_style=True,
                                     s3_access_key="testing", s3_secret_key="testing")
    server.stop()


@pytest.fixture(scope="module")
def hdfs_root(request):
    """HDFS of the session's Hadoop minicluster, reached over WebHDFS as a task without libhdfs does."""
    cluster = request.getfixturevalue("yarn_cluster")
    return cluster.uri("/commit-tests"), cluster.fs_settings()


@pytest.fixture(scope="module")
def gcs_root(request):
    """A bucket on fake-gcs-server on 127.0.0.1 (tests/gcs_server.py): imagerank.fs reaches it through
    pyarrow's GCS client, and the commit's create-if-absent through the test session's Hadoop GCS
    connector, as a Dataproc driver does."""
    from gcs_server import BUCKET, GcsServer, hadoop_settings, missing

    why = missing()
    if why:
        pytest.skip(why)
    spark = request.getfixturevalue("spark")
    try:
        spark._jvm.org.apache.spark.util.Utils.classForName("com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
                                                           True, False)  # the session's classes, spark.jars too
    except Exception:  # noqa: BLE001 - py4j wraps ClassNotFoundException
        pytest.skip("the GCS connector is not on the test session's classpath (a session started before make gcs?)")
    server = GcsServer().start()
    with hadoop_conf(spark, hadoop_settings(server.endpoint)):  # the session's other tests see it as it was
        fs.use_hadoop(spark)
        yield f"gs://{BUCKET}", fs.FsSettings(gcs_endpoint=server.endpoint, gcs_anonymous=True)
    server.stop()


@pytest.fixture(params=["local", "s3", "gcs", pytest.param("hdfs", marks=[pytest.mark.slow, pytest.mark.hadoop])])
def root(request, tmp_path):
    """A folder on a local disk, S3, GCS or HDFS, with the fs settings that reach it for this test."""
    if request.param == "local":
        yield str(tmp_path)
        return
    store, settings = request.getfixturevalue(f"{request.param}_root")
    with fs_configured(settings):
        yield store + "/" + os.path.basename(str(tmp_path))


def _write_run(output: str, rows: int, every: float = 0.2) -> tuple[str, commit.Heartbeat]:
    """A started run with one 'table' file, beating its heartbeat."""
    run, _, attempt = commit.start_run(output, STAGE, {"rows": rows})
    fs.write_json(fs.join(commit.run_folder(output, run), "pages", "part-0.json"), list(range(rows)))
    return run, commit.Heartbeat(output, run, attempt, every)


def _rows(output: str, run: str | None = None) -> list:
    folder = commit.run_folder(output, run) if run else commit.current_run(output)
    return fs.read_json(fs.join(folder, "pages", "part-0.json"))


def test_create_exclusive_has_one_winner(root):
    target = fs.join(root, "claims", "one")
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: fs.create_exclusive(target, f"writer {i}".encode()), range(8)))
    assert won.count(True) == 1
    assert fs.read_text(target) == f"writer {won.index(True)}"
    assert fs.create_exclusive(target, b"late") is False and fs.read_text(target) == f"writer {won.index(True)}"


def test_two_commits_at_once_give_one_winner_and_a_clear_error(root):
    """20 times (5 on S3 and HDFS): two runs started from one base commit at once; one wins, the other fails in one line
    naming the winner; the marker names the winner, whose run is whole; the loser's run is not deleted."""
    for trial in range(20 if fs.is_local(root) else 5):  # remote stores: fewer, each a round trip per step
        output = fs.join(root, f"race{trial}")
        base = commit.Base.of(output)
        runs = [_write_run(output, rows) for rows in (3, 5)]
        barrier = threading.Barrier(2)

        def attempt(i):
            run, beat = runs[i]
            barrier.wait()
            try:
                commit.commit(output, run, STAGE, {"rows": i}, base)
                return "committed"
            except commit.CommitConflict as conflict:
                return str(conflict)
            finally:
                beat.stop()

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(attempt, range(2)))
        assert outcomes.count("committed") == 1, outcomes
        winner = runs[outcomes.index("committed")][0]
        loser = runs[1 - outcomes.index("committed")][0]
        error = outcomes[1 - outcomes.index("committed")]
        assert "\n" not in error and f"run {winner} was committed" in error and f"run {loser} is left uncommitted" in error
        assert commit.marker(output)["run"] == winner == fs.read_json(fs.join(output, commit.MARKER))["run"]
        assert _rows(output) == list(range(3 if winner == runs[0][0] else 5))
        assert _rows(output, loser)  # the loser's run is still there, whole, for a rerun or a look


def test_a_commit_after_another_run_committed_is_refused(root):
    """A run started before another committed: its commit would overwrite a commit it never read."""
    output = fs.join(root, "out")
    first, beat = _write_run(output, 1)
    commit.commit(output, first, STAGE, {}, commit.Base.of(output))
    beat.stop()
    base = commit.Base.of(output)
    slow, slow_beat = _write_run(output, 2)
    fast, fast_beat = _write_run(output, 3)
    commit.commit(output, fast, STAGE, {}, base)
    with pytest.raises(commit.CommitConflict, match=f"run {fast} was committed .*both started from {first}"):
        commit.commit(output, slow, STAGE, {}, base)
    assert commit.marker(output)["run"] == fast and _rows(output) == [0, 1, 2]
    slow_beat.stop(), fast_beat.stop()


def test_a_reader_keeps_its_run_through_three_commits(root):
    output = fs.join(root, "out")
    runs = []
    for rows in range(1, 5):
        run, beat = _write_run(output, rows)
        commit.commit(output, run, STAGE, {}, commit.Base.of(output))
        beat.stop()
        runs.append(run)
        if rows == 1:
            held = commit.current_run(output)  # a reader starts on the first run
    assert commit.marker(output)["run"] == runs[-1]
    assert fs.read_json(fs.join(held, "pages", "part-0.json")) == [0]  # three commits later, still readable
    assert sorted(fs.list_names(fs.join(output, commit.RUNS))) == sorted(runs)
    assert [fs.read_json(fs.join(commit.run_folder(output, r), commit.SUPERSEDED))["by"] for r in runs[:-1]] == runs[1:]


def test_retention_removes_old_and_abandoned_runs_never_one_in_progress(root):
    output = fs.join(root, "out")
    old, beat = _write_run(output, 1)
    commit.commit(output, old, STAGE, {}, commit.Base.of(output))
    beat.stop()
    abandoned, _ = commit.start_run(output, STAGE, {"rows": 9})[:2]  # its process died: no heartbeat ever
    fs.write_json(fs.join(commit.run_folder(output, abandoned), commit.HEARTBEAT),
                  {"at": time.time() - 10, "attempt": 1, "released": False})
    alive, alive_beat = _write_run(output, 2, every=0.2)  # still being written: beats every 0.2 s
    started = time.time()
    time.sleep(3.0)
    newest, beat = _write_run(output, 3)
    commit.commit(output, newest, STAGE, {}, commit.Base.of(output), retention=2.5)
    beat.stop()
    runs = set(fs.list_names(fs.join(output, commit.RUNS)))
    # old was superseded just now: kept for its readers; the abandoned run is gone; the live one stays
    assert runs == {old, alive, newest}, (runs, time.time() - started)
    time.sleep(3.0)
    later, beat = _write_run(output, 4)
    commit.commit(output, later, STAGE, {}, commit.Base.of(output), retention=2.5)
    beat.stop()
    assert set(fs.list_names(fs.join(output, commit.RUNS))) == {alive, newest, later}
    alive_beat.stop()


def test_a_marker_left_behind_by_a_dead_committer(root):
    """A committer that died between its log entry and its copy in _CURRENT: readers follow the log,
    _CURRENT names a run that still exists, and the next commit sets _CURRENT right."""
    output = fs.join(root, "out")
    first, beat = _write_run(output, 1)
    commit.commit(output, first, STAGE, {}, commit.Base.of(output))
    beat.stop()
    second, beat = _write_run(output, 2)
    beat.stop()
    fs.write_json(fs.join(commit.run_folder(output, second), commit.REPORT), {})
    entry = {"seq": 2, "run": second, "stage": STAGE, "replaces": first, "committed_at": commit.now_iso()}
    assert fs.create_exclusive(fs.join(output, commit.COMMITS, "000000000002.json"), json.dumps(entry).encode())
    assert commit.current_run(output).endswith(second) and _rows(output) == [0, 1]
    assert fs.read_json(fs.join(output, commit.MARKER))["run"] == first and _rows(output, first) == [0]
    third, beat = _write_run(output, 3)
    commit.commit(output, third, STAGE, {}, commit.Base.of(output))
    beat.stop()
    assert fs.read_json(fs.join(output, commit.MARKER))["run"] == third == commit.marker(output)["run"]


def test_resume_takes_a_dead_run_once_and_never_a_live_one(root):
    output = fs.join(root, "out")
    args = {"rows": 1}
    dead, _ = commit.start_run(output, STAGE, args)[:2]
    fs.write_json(fs.join(commit.run_folder(output, dead), commit.HEARTBEAT),
                  {"at": time.time() - 5, "attempt": 1, "released": False})  # silent for 5 s: 25 heartbeats
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _: commit.start_run(output, STAGE, args, resume=True, every=0.2), range(2)))
    resumed = [g for g in got if g[1]]
    assert len(resumed) == 1 and resumed[0][0] == dead and resumed[0][2] == 2  # one takes it over, as attempt 2
    assert [g for g in got if not g[1]][0][0] != dead  # the other starts a run of its own
    # a run whose process still beats is waited for (3 heartbeats), then left alone
    live, beat = _write_run(output, 7, every=1.0)
    started = time.time()
    run, resumed_, _ = commit.start_run(output, STAGE, {"rows": 7}, resume=True, every=1.0)
    assert run != live and not resumed_ and time.time() - started >= 3.0
    fs.delete_tree(commit.run_folder(output, run))  # (that fresh run's process is not simulated)
    beat.stop()  # released: resumable at once
    run, resumed_, attempt = commit.start_run(output, STAGE, {"rows": 7}, resume=True, every=1.0)
    assert (run, resumed_, attempt) == (live, True, 2)
    # the first attempt, had it lived on, could not commit the run it lost
    with pytest.raises(commit.CommitConflict, match="taken over by another process"):
        commit.commit(output, live, STAGE, {}, commit.Base.of(output), attempt=1)


def test_another_stages_output_is_refused(root):
    output = fs.join(root, "out")
    run, beat = _write_run(output, 1)
    beat.stop()
    with pytest.raises(commit.OutputError, match=r"holds a run of extract \(.*\); rank writes only into its own"):
        commit.check_owned(output, "rank")
    commit.commit(output, run, STAGE, {}, commit.Base.of(output))
    with pytest.raises(commit.OutputError, match=r"holds an extract output \(run .*\); rank writes only into its own"):
        commit.check_owned(output, "rank")
    commit.check_owned(output, STAGE)


def test_extractions_started_together_into_one_output(spark, tmp_path):
    """20 times two extractions of one file into one output at once (a retried step whose first
    attempt still runs): one commits; the other commits after it or fails in one line; the current
    run is always whole and readable, and no run in progress is ever deleted."""
    from conftest import shared_file, table

    from imagerank.crawl.extract import run_extract

    whirlwind = str(shared_file("warc", "whirlwind", "whirlwind.warc.gz"))
    expected = None
    for trial in range(20):
        out = str(tmp_path / f"out{trial}")
        barrier = threading.Barrier(2)

        def extract(_):
            barrier.wait()
            try:
                return run_extract(spark, whirlwind, out)
            except commit.CommitConflict as conflict:
                return str(conflict)

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(extract, range(2)))
        reports = [o for o in outcomes if isinstance(o, dict)]
        errors = [o for o in outcomes if isinstance(o, str)]
        assert reports and all("\n" not in e and "is left uncommitted" in e for e in errors), outcomes
        current = commit.marker(out)["run"]
        assert current in [r["run"] for r in reports]
        expected = expected or reports[0]["rows_written"]
        for name, rows in expected.items():
            assert table(spark, out, name).count() == rows
        runs = fs.list_names(fs.join(fs.qualify(spark, out), commit.RUNS))
        assert len(runs) == 2  # the loser's run too: nothing deleted


def test_the_marker_is_never_missing_while_it_is_replaced(root):
    """A reader polling _CURRENT while a writer replaces it 30 times always finds it whole (HDFS:
    WebHDFS's rename with overwrite, atomic at the NameNode; S3: one PUT; local: rename)."""
    marker = fs.join(root, "out", commit.MARKER)
    fs.write_json(marker, {"run": "r-0"})
    seen, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            seen.append(fs.read_json(marker)["run"])  # raises if missing or partial

    with ThreadPoolExecutor(1) as pool:
        reader = pool.submit(poll)
        for i in range(1, 31):
            fs.write_json(marker, {"run": f"r-{i}"})
        stop.set()
        reader.result()
    assert fs.read_json(marker)["run"] == "r-30" and len(seen) > 0
    assert fs.list_names(fs.join(root, "out")) == [commit.MARKER]  # no temporary file left
