"""The jobs as users run them, through pyspark's own spark-submit: the pipeline in local-cluster mode
(the driver, and an executor in a process of its own with two task slots, so two Python workers, as on
a cluster; one executor, not two: each executor JVM starts and warms up on its own) writing to an
S3-compatible server on loopback; and the helpers the YARN tests share (tests/test_yarn.py: the
pipeline through conf/submit-yarn.sh, and one that loses an executor mid-extraction, is killed and resumes).

Each test starts real spark-submit processes, so these are the slowest tests of the suite.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import short_jvm_options, spark_home, table, write_config

pytestmark = pytest.mark.slow  # spark-submit end to end: the slow batch (make test-slow)

ROOT = Path(__file__).resolve().parents[1]
MASTER = "local-cluster[1,2,1024]"
TABLES = {"extract": ("pages", "image_embeds", "page_links"), "graph": ("vertices", "edges"),
          "rank": ("page_rank", "host_rank", "domain_rank", "image_authority"),
          "popularity": ("provider_constants", "popularity"), "table": ("authority", "coverage")}


def hadoop_version() -> str:
    (jar,) = (spark_home() / "jars").glob("hadoop-client-api-*.jar")
    return jar.name[len("hadoop-client-api-"):-len(".jar")]


def _no_core_files() -> None:
    """No core file from spark-submit's processes (stacks() ends its Pythons with SIGABRT) in the checkout."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Submitted:
    """A spark-submit process whose standard error is read line by line as it comes."""

    def __init__(self, script: str, args: list[str], conf: dict | None = None, packages: str | None = None,
                 env: dict | None = None, master: str = MASTER):
        settings = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4",
                    "spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable,
                    "spark.executor.memory": "1g", "spark.driver.extraJavaOptions": short_jvm_options(),
                    "spark.executor.extraJavaOptions": short_jvm_options(), **(conf or {})}
        # local-cluster's executors work in <SPARK_HOME>/work/<app id> (inside the installed pyspark, shared by
        # every test process), each with its copies of the --packages jars: a mark on the executors' command
        # line (their stderr's first line) finds this application's folder, removed when it ends (finish)
        self._mark = None
        if master.startswith("local-cluster"):
            self._mark = f"-Dimagerank.test.submit={os.getpid()}-{id(self)}-{time.monotonic_ns()}"
            settings["spark.executor.extraJavaOptions"] = f"{settings['spark.executor.extraJavaOptions']} {self._mark}"
        command = [str(spark_home() / "bin" / "spark-submit"), "--master", master]
        for key, value in settings.items():
            command += ["--conf", f"{key}={value}"]
        if packages:
            command += ["--packages", packages]
        command += [str(ROOT / "jobs" / script), *args]
        full_env = {**os.environ, "SPARK_HOME": str(spark_home()), "PYSPARK_PYTHON": sys.executable,
                    "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", **(env or {})}
        full_env.pop("PYSPARK_SUBMIT_ARGS", None)
        self.process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, start_new_session=True,
                                        preexec_fn=_no_core_files)
        self.lines: list[str] = []
        self.out: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(self.process.stderr, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_for(self, predicate, timeout: float = 300.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"spark-submit ended ({self.process.returncode}) first:\n" + self.log())
            time.sleep(0.05)
        stacks = self.stacks()
        self.kill()
        raise AssertionError(f"timed out waiting for spark-submit:\n{stacks}")

    def saw(self, text: str) -> bool:
        """Whether a line with ``text`` came (spark-submit's Python driver prints to the JVM's stdout)."""
        return any(text in line for line in list(self.lines) + list(self.out))

    def finish(self, timeout: float = 600.0) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stacks = self.stacks()
            self.kill()
            raise AssertionError(f"spark-submit did not end in {timeout:.0f} s:\n{stacks}") from None
        for reader in self._readers:
            reader.join(timeout=10)
        self._remove_work_folders()
        return code

    def _remove_work_folders(self) -> None:
        """This application's local-cluster folders in <SPARK_HOME>/work (the executors' logs and copied jars),
        found by the mark on their command line; another process's applications are left alone."""
        if self._mark is None:
            return
        for folder in (spark_home() / "work").glob("app-*"):
            for stderr in folder.glob("*/stderr"):
                try:
                    with open(stderr, "rb") as stream:
                        head = stream.read(64 << 10)
                except OSError:
                    continue
                if self._mark.encode() in head:
                    shutil.rmtree(folder, ignore_errors=True)
                    break

    def stacks(self, frames: int = 12) -> str:
        """What a spark-submit that does not end is doing: each JVM's threads (jcmd Thread.print; the first
        ``frames`` frames of each) and each Python's (faulthandler, on SIGABRT: it ends that Python)."""
        group = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid, rest = stat.read_text().split(" ", 1)
                fields = rest.rsplit(")", 1)[1].split()
                if int(fields[2]) == self.process.pid:
                    group.append((int(pid), (stat.parent / "cmdline").read_bytes().split(b"\0")[0].decode()))
            except (OSError, IndexError, ValueError):
                continue
        dumps = [f"processes of the group: {group}"]
        for pid, program in group:
            if program.endswith("java"):
                jcmd = Path(program).with_name("jcmd")
                try:
                    text = subprocess.run([str(jcmd), str(pid), "Thread.print"], capture_output=True, text=True,
                                          timeout=60).stdout
                except (OSError, subprocess.TimeoutExpired) as error:
                    text = f"jcmd failed: {error}"
                threads = ["\n".join(block.splitlines()[:frames + 2]) for block in text.split("\n\n")
                           if block.startswith('"')]
                dumps.append(f"== the threads of JVM {pid}\n" + "\n".join(threads))
        for pid, program in group:
            if "python" in Path(program).name:
                os.kill(pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: its threads' stacks go to its stderr
        time.sleep(2)
        return "\n".join(dumps + ["== the last lines", self.log(last=80)])

    def kill(self) -> None:
        """The whole process group: spark-submit's JVM, the Python driver, the executors."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=60)

    def log(self, last: int = 60) -> str:
        return "\n".join(self.out[-last:] + self.lines[-last:])


def run_ok(submitted: Submitted, timeout: float = 600.0) -> None:
    code = submitted.finish(timeout)
    assert code == 0, f"spark-submit exited {code}:\n{submitted.log()}"


def rows(spark, output, name: str, drop: tuple[str, ...] = (), moved: tuple[str, str] | None = None) -> list[tuple]:
    """A table's rows, sorted by their values other than floats (floats may differ in the last bits);
    with ``moved`` (old prefix, new prefix), string values under the old prefix (a crawl file's path,
    where the crawl was copied elsewhere) are read as if under the new one."""
    def place(value):
        if moved and isinstance(value, str) and value.startswith(moved[0]):
            return moved[1] + value[len(moved[0]):]
        return value

    frame = table(spark, output, name).drop(*drop)
    return sorted((tuple(place(v) for v in row) for row in frame.collect()),
                  key=lambda row: repr([v for v in row if not isinstance(v, float)]))


def same_rows(got: list[tuple], expected: list[tuple]) -> bool:
    """Equal, floats to 1e-9 relative: PageRank sums in another order on another partitioning."""
    return len(got) == len(expected) and all(
        len(a) == len(b) and all(x == pytest.approx(y, rel=1e-9, abs=1e-15) if isinstance(y, float) else x == y
                                 for x, y in zip(a, b))
        for a, b in zip(got, expected))


def assert_same_tables(spark, got_root: str, expected_root: str, folders=TABLES,
                       moved: tuple[str, str] | None = None) -> None:
    for folder, names in folders.items():
        for name in names:
            drop = ("computed_at",) if name == "authority" else ()
            got = rows(spark, f"{got_root}/{folder}", name, drop, moved)
            expected = rows(spark, f"{expected_root}/{folder}", name, drop)
            assert same_rows(got, expected), f"{folder}/{name} differs: {got[:3]} ... != {expected[:3]} ..."



@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def test_the_pipeline_writes_to_s3_from_a_local_cluster(spark, reference, s3_endpoint, tmp_path):
    """Outputs on s3:// (rewritten to s3a:// for Hadoop, as outside EMR), written by the driver
    and by executor tasks, read back through the commit markers, equal to the local run."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, **{
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"})
    client.create_bucket(Bucket="imagerank")
    crawl = reference["crawl"]
    config = write_config(tmp_path / "pipeline.yaml", "s3://imagerank/run", crawl["manifest"], crawl["catalog"],
                          crawl["trusted_sources"])
    s3a = {"spark.hadoop.fs.s3a.endpoint": s3_endpoint, "spark.hadoop.fs.s3a.path.style.access": "true",
           "spark.hadoop.fs.s3a.access.key": "testing", "spark.hadoop.fs.s3a.secret.key": "testing",
           "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
           "spark.hadoop.fs.s3a.connection.ssl.enabled": "false"}
    job = Submitted("pipeline.py", ["--config", config], conf=s3a,
                    packages=f"org.apache.hadoop:hadoop-aws:{hadoop_version()}", env=S3_ENV)
    code = job.finish(900)
    if code != 0 and any("unresolved dependency" in line or "UnresolvedDependencies" in line for line in job.lines):
        pytest.skip("hadoop-aws could not be fetched from the Maven repository: " + job.log(5))
    assert code == 0, job.log()
    keys = {obj["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="imagerank")
            for obj in page.get("Contents", []) if not obj["Key"].endswith("/")}  # not folder placeholders
    marker = yaml.safe_load(client.get_object(Bucket="imagerank", Key="run/table/_CURRENT")["Body"].read())
    run = marker["run"]
    assert f"run/table/_runs/{run}/_report.json" in keys
    assert any(k.startswith(f"run/table/_runs/{run}/authority/provider=flickr/part-") for k in keys)
    extract_run = yaml.safe_load(client.get_object(Bucket="imagerank", Key="run/extract/_CURRENT")["Body"].read())
    parts = [k for k in keys if k.startswith(f"run/extract/_runs/{extract_run['run']}/pages/")]
    assert sorted(p.rsplit("/", 1)[1] for p in parts) == [f"part-0000{i}.parquet" for i in range(3)]
    # bring the S3 outputs down and compare them with the local run's
    local = tmp_path / "down"
    for key in keys:
        target = local / key
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file("imagerank", key, str(target))
    assert_same_tables(spark, str(local / "run"), reference["root"])
    shutil.rmtree(local)


@pytest.fixture(scope="module")
def gcs_server():
    """Cloud Storage's JSON API on 127.0.0.1 (tests/gcs_server.py), with one bucket."""
    from gcs_server import GcsServer, missing

    why = missing()
    if why:
        pytest.skip(why)
    server = GcsServer().start()
    yield server
    server.stop()


def test_the_pipeline_writes_to_gcs_from_a_local_cluster(spark, reference, gcs_server, tmp_path):
    """Outputs on gs://, as on Dataproc: Spark's tables and the driver's commits go through Hadoop's
    GCS connector, the executors' extraction parts and every report through pyarrow's GCS client
    (imagerank.fs, told the endpoint by the connector's own settings); read back through the
    commit markers, they equal the local run."""
    from gcs_server import BUCKET, connector_jar, hadoop_settings

    crawl = reference["crawl"]
    config = write_config(tmp_path / "pipeline.yaml", f"gs://{BUCKET}/run", crawl["manifest"], crawl["catalog"],
                          crawl["trusted_sources"])
    conf = {"spark.jars": str(connector_jar()),
            **{f"spark.hadoop.{key}": value for key, value in hadoop_settings(gcs_server.endpoint).items()}}
    job = Submitted("pipeline.py", ["--config", config], conf=conf)
    assert job.finish(900) == 0, job.log()
    names = {name for name in gcs_server.objects() if not name.endswith("/")}  # not folder markers
    store = gcs_server.filesystem()
    marker = yaml.safe_load(store.open_input_stream(f"{BUCKET}/run/table/_CURRENT").read())
    run = marker["run"]
    assert f"run/table/_runs/{run}/_report.json" in names
    assert any(n.startswith(f"run/table/_runs/{run}/authority/provider=flickr/part-") for n in names)
    extract_run = yaml.safe_load(store.open_input_stream(f"{BUCKET}/run/extract/_CURRENT").read())["run"]
    parts = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith(f"run/extract/_runs/{extract_run}/pages/"))
    assert parts == [f"part-0000{i}.parquet" for i in range(3)]
    local = tmp_path / "down"
    for name in names:
        target = local / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.open_input_stream(f"{BUCKET}/{name}").read())
    assert_same_tables(spark, str(local / "run"), reference["root"])
    shutil.rmtree(local)
