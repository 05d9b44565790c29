"""Real Hadoop daemons for the tests: a YARN ResourceManager and NodeManager (MiniYARNCluster) and an HDFS
NameNode and DataNode (MiniDFSCluster), from org.apache.hadoop:hadoop-client-minicluster on Maven Central,
for pyspark's own ``spark-submit --master yarn`` to run against. No Hadoop installation is needed: only
``java``, ``javac`` and ``mvn`` (and Maven Central, the first time for each Hadoop version).

    with MiniCluster() as cluster:
        cluster.put("lines.txt", "/input/lines.txt")
        subprocess.run([spark_submit, "--master", "yarn", *conf_args(cluster.spark_conf()), script, ...],
                       env={**os.environ, **cluster.env()})
        cluster.ls("/out")

The Hadoop version is that of the installed pyspark's hadoop-client-api jar (3.4.2 for pyspark 4.1,
3.3.4 for pyspark 3.5): the daemons and Spark's own Hadoop client are then of one version.

Files:
- the jars and the compiled launcher are kept in ``.minicluster/hadoop-<version>/`` at the repository root
  (``IMAGERANK_MINICLUSTER_CACHE`` moves it): ``lib/`` (about 100 MB, copied by Maven from ~/.m2) and
  ``classes-<hash of the source>/``;
- each running cluster has a work folder in the temporary folder (``work_dir``): the daemons' data, the
  NodeManager's container folders and logs, ``conf/`` (the HADOOP_CONF_DIR) and ``minicluster.log`` (the
  daemons' log); removed by ``stop()`` unless ``IMAGERANK_MINICLUSTER_KEEP=1``.

The daemons run in one JVM (tests/minicluster/MiniClusters.java) that stops them all and removes the work
folder when its standard input closes, so a test process that dies, however, leaves none behind (the JVM
also does so on SIGTERM).
``yarn_cluster`` is a session-scoped pytest fixture over one shared cluster; it skips, saying why, where
java, javac, mvn or Maven Central is missing (``IMAGERANK_MINICLUSTER_REQUIRED=1`` makes that a failure).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import short_jvm_options, spark_home

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "minicluster"
SOURCE = HERE / "MiniClusters.java"
CACHE = Path(os.environ.get("IMAGERANK_MINICLUSTER_CACHE") or ROOT / ".minicluster")
LOOPBACK = "127.0.0.1"

# beside the shaded minicluster jar: BouncyCastle and the JAXB API for the ResourceManager on Java 17, and a
# log4j 1 API (reload4j) that some daemon classes call directly
EXTRA_ARTIFACTS = (
    "org.bouncycastle:bcprov-jdk18on:1.78.1",
    "org.bouncycastle:bcpkix-jdk18on:1.78.1",
    "javax.xml.bind:jaxb-api:2.3.1",
    "org.slf4j:slf4j-reload4j:1.7.36",
    "ch.qos.reload4j:reload4j:1.2.25",
)
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

# Hadoop's web apps (Guice's cglib) and RPC reflect into the JDK on Java 17
JAVA_OPENS = [f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in (
    "java.lang", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.util", "java.util.concurrent",
    "sun.nio.ch", "sun.security.action")]

LOG4J = """\
log4j.rootLogger={level}, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%d{{HH:mm:ss,SSS}} %-5p %c{{1}}: %m%n
log4j.logger.org.apache.hadoop.yarn.server.resourcemanager.RMAppManager$ApplicationSummary=INFO
"""
JUL = "handlers=java.util.logging.ConsoleHandler\n.level=WARNING\njava.util.logging.ConsoleHandler.level=WARNING\n"


class MiniClusterUnavailable(RuntimeError):
    """What the cluster needs is not here (java, javac, mvn, Maven Central): a reason to skip, not a failure."""


def pyspark_hadoop_version() -> str:
    """The Hadoop version of the installed pyspark (its hadoop-client-api jar)."""
    jars = sorted((spark_home() / "jars").glob("hadoop-client-api-*.jar"))
    if not jars:
        raise MiniClusterUnavailable(f"no hadoop-client-api jar in {spark_home() / 'jars'}")
    return jars[-1].name[len("hadoop-client-api-"):-len(".jar")]


def java_home() -> Path:
    """JAVA_HOME, or the home of the ``java`` on PATH: the NodeManager starts containers with $JAVA_HOME/bin/java."""
    if os.environ.get("JAVA_HOME") and (Path(os.environ["JAVA_HOME"]) / "bin" / "java").exists():
        return Path(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    if java is None:
        raise MiniClusterUnavailable("no java on PATH and no JAVA_HOME: the Hadoop daemons need a JDK")
    return Path(java).resolve().parents[1]


def spawn_options(home: Path) -> list[str]:
    """How the daemons' JVM starts processes. Without Hadoop's native library (Maven Central has none),
    the NodeManager runs `chmod` once per file and folder it localizes (FSDownload.changePermissions,
    RawLocalFileSystem.setPermission): the packed env's 10,000 cost about 30 s before the application
    master starts. vfork starts each in 1.2 ms against the default posix_spawn's 2.1 ms (a 1 GB JVM
    here); Java 17 to 22 offer it (deprecated from 23: the default stays there)."""
    try:
        version = next(line.split("=", 1)[1].strip().strip('"') for line in (home / "release").read_text().splitlines()
                       if line.startswith("JAVA_VERSION="))
        major = int(version.split(".")[0])
    except (OSError, StopIteration, ValueError):
        return []
    return ["-Djdk.lang.Process.launchMechanism=VFORK"] if 17 <= major <= 22 else []


def _tool(name: str) -> str:
    path = shutil.which(name) or str(java_home() / "bin" / name)
    if not Path(path).exists():
        raise MiniClusterUnavailable(f"no {name} on PATH: the Hadoop test cluster needs it "
                                     f"({'a JDK' if name.startswith('java') else 'Maven'})")
    return path


def _pom(hadoop_version: str) -> str:
    artifacts = (f"org.apache.hadoop:hadoop-client-minicluster:{hadoop_version}",) + EXTRA_ARTIFACTS
    dependencies = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>"
        .format(*artifact.split(":")) for artifact in artifacts)
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <!-- written by tests/minicluster.py: the jars of the Hadoop test daemons -->
  <modelVersion>4.0.0</modelVersion>
  <groupId>imagerank.tests</groupId>
  <artifactId>minicluster-hadoop</artifactId>
  <version>{hadoop_version}</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""


def prepare(hadoop_version: str | None = None, log=None) -> tuple[list[str], dict]:
    """The launcher's classpath for a Hadoop version, fetched (Maven) and compiled (javac) at first use,
    and {"maven_s", "javac_s"} (0 when the cache had them). Raises MiniClusterUnavailable."""
    version = hadoop_version or pyspark_hadoop_version()
    home = CACHE / f"hadoop-{version}"
    home.mkdir(parents=True, exist_ok=True)
    timings = {"maven_s": 0.0, "javac_s": 0.0}
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test processes preparing at once
        lib = home / "lib"
        if not (lib / ".complete").exists():
            mvn = shutil.which("mvn")
            if mvn is None:
                raise MiniClusterUnavailable("no mvn on PATH: Maven fetches the Hadoop minicluster jars")
            (home / "pom.xml").write_text(_pom(version))
            partial = home / "lib.partial"
            shutil.rmtree(partial, ignore_errors=True)
            started = time.monotonic()
            done = subprocess.run(
                [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(home / "pom.xml"),
                 f"{DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={partial}"],
                capture_output=True, text=True, timeout=1800)
            timings["maven_s"] = time.monotonic() - started
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
                raise MiniClusterUnavailable(
                    f"Maven could not fetch org.apache.hadoop:hadoop-client-minicluster:{version} "
                    f"(is Maven Central reachable?):\n{tail}")
            (partial / ".complete").write_text("\n".join(sorted(p.name for p in partial.glob("*.jar"))) + "\n")
            shutil.rmtree(lib, ignore_errors=True)
            partial.rename(lib)
            if log:
                log(f"fetched the Hadoop {version} minicluster jars in {timings['maven_s']:.1f} s")
        source = SOURCE.read_bytes()
        classes = home / f"classes-{hashlib.sha256(source).hexdigest()[:12]}"
        if not (classes / "MiniClusters.class").exists():
            javac = _tool("javac")
            partial = home / "classes.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            started = time.monotonic()
            done = subprocess.run([javac, "-nowarn", "-d", str(partial), "-cp", str(lib / "*"), str(SOURCE)],
                                  capture_output=True, text=True, timeout=600)
            timings["javac_s"] = time.monotonic() - started
            if done.returncode != 0:  # the source does not fit this Hadoop: a failure, not a skip
                raise RuntimeError(f"javac could not compile {SOURCE} against Hadoop {version}:\n"
                                   + done.stdout + done.stderr)
            shutil.rmtree(classes, ignore_errors=True)
            partial.rename(classes)
            for stale in home.glob("classes-*"):  # compiled from earlier versions of the source
                if stale != classes:
                    shutil.rmtree(stale, ignore_errors=True)
    return [str(classes), str(lib / "*")], timings


class MiniCluster:
    """HDFS (1 DataNode) and YARN (1 NodeManager) in one JVM; a context manager.

    ``conf_dir``: the HADOOP_CONF_DIR (core-site, hdfs-site, yarn-site, capacity-scheduler);
    ``hdfs_uri``: hdfs://127.0.0.1:PORT; ``env()``: what spark-submit's environment needs (``env(default_fs=
    "file:///")`` for local paths); ``spark_conf()``: Spark settings for this cluster;
    put/get/ls/lsr/cat/mkdir/rm/exists on HDFS; ``apps()`` the ResourceManager's applications,
    ``app_logs(app_id)`` their containers' logs, ``container_pids(app_id)`` their running JVMs;
    ``timings`` and ``rss_mb()`` what the start took and what the daemons' JVM holds.
    """

    def __init__(self, hadoop_version: str | None = None, nm_memory_mb: int = 6144, nm_vcores: int = 4,
                 min_allocation_mb: int = 256, heap_mb: int = 768, log_level: str | None = None):
        self.hadoop_version = hadoop_version or pyspark_hadoop_version()
        self.nm_memory_mb, self.nm_vcores, self.min_allocation_mb = nm_memory_mb, nm_vcores, min_allocation_mb
        self.heap_mb = heap_mb
        self.log_level = log_level or os.environ.get("IMAGERANK_MINICLUSTER_LOG", "WARN")
        self.work_dir: Path | None = None
        self.conf_dir: Path | None = None
        self.hdfs_uri: str | None = None
        self.info: dict = {}
        self.timings: dict = {}
        self.peak_rss_mb: float | None = None
        self._process: subprocess.Popen | None = None
        self._answers: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._java_home: Path | None = None

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self, timeout: float = 300.0) -> "MiniCluster":
        started = time.monotonic()
        self._java_home = java_home()
        java = str(self._java_home / "bin" / "java")
        if not Path(java).exists():
            raise MiniClusterUnavailable(f"no {java}")
        classpath, self.timings = prepare(self.hadoop_version)
        self.work_dir = Path(tempfile.mkdtemp(prefix="imagerank-minicluster-"))
        self.conf_dir = self.work_dir / "conf"
        (self.work_dir / "log4j.properties").write_text(LOG4J.format(level=self.log_level))
        (self.work_dir / "logging.properties").write_text(JUL)
        command = [java, f"-Xmx{self.heap_mb}m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                   "-Djava.net.preferIPv4Stack=true", *JAVA_OPENS, *spawn_options(self._java_home),
                   f"-Dlog4j.configuration=file:{self.work_dir / 'log4j.properties'}",
                   f"-Djava.util.logging.config.file={self.work_dir / 'logging.properties'}",
                   "-cp", os.pathsep.join(classpath), "MiniClusters",
                   "--conf-dir", str(self.conf_dir), "--work-dir", str(self.work_dir),
                   "--nm-memory-mb", str(self.nm_memory_mb), "--nm-vcores", str(self.nm_vcores),
                   "--min-allocation-mb", str(self.min_allocation_mb),
                   "--delete-work-dir", "false" if self._keep() else "true"]
        # the NodeManager's containers start from its environment: JAVA_HOME for $JAVA_HOME/bin/java, and
        # the loopback address for Spark (the host name resolves to loopback here)
        env = {**os.environ, "JAVA_HOME": str(self._java_home), "SPARK_LOCAL_IP": LOOPBACK}
        for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR", "HADOOP_HOME", "PYSPARK_SUBMIT_ARGS"):
            env.pop(name, None)
        self._log = open(self.work_dir / "minicluster.log", "w")
        launched = time.monotonic()
        # a session of its own: Ctrl-C in the terminal reaches pytest, whose teardown stops the daemons
        self._process = subprocess.Popen(command, cwd=self.work_dir, env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1,
                                         start_new_session=True)
        threading.Thread(target=self._read, daemon=True, name="minicluster-stdout").start()
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._answers.get(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    reason = (f"exited {self._process.returncode}" if self._process.poll() is not None
                              else f"not ready after {timeout:.0f} s")
                    tail = self.log_tail()
                    self.stop()
                    raise RuntimeError(f"the Hadoop minicluster {reason}:\n{tail}")
                continue
            if line is None or line.startswith("FAILED"):
                if line is not None:
                    self._process.wait(timeout=120)  # it stops what did start, then exits
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"the Hadoop minicluster failed to start: {line}\n{tail}")
            if line.startswith("READY "):
                self.info = json.loads(line[len("READY "):])
                break
        self.hdfs_uri = self.info["hdfs"]
        self.timings.update(jvm_start_s=time.monotonic() - launched, start_s=time.monotonic() - started,
                            hdfs_start_s=self.info["hdfs_start_s"], yarn_start_s=self.info["yarn_start_s"])
        return self

    def _read(self) -> None:
        for line in self._process.stdout:
            self._answers.put(line.rstrip("\n"))
        self._answers.put(None)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every daemon (closing the launcher's standard input) and remove the work folder."""
        process, self._process = self._process, None
        if process is None:
            return
        self.peak_rss_mb = self._peak_rss_mb(process.pid) or self.peak_rss_mb
        if process.poll() is None:
            try:
                process.stdin.close()
            except OSError:
                pass
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=30)
        self._log.close()
        atexit.unregister(self.stop)
        if self.work_dir is not None and not self._keep():
            shutil.rmtree(self.work_dir, ignore_errors=True)

    @staticmethod
    def _keep() -> bool:
        return os.environ.get("IMAGERANK_MINICLUSTER_KEEP") == "1"

    def __enter__(self) -> "MiniCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @staticmethod
    def _peak_rss_mb(pid: int) -> float | None:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def rss_mb(self) -> dict:
        """The daemons' JVM: its resident memory now and at its peak, in MB."""
        if not self.running():
            return {"peak": self.peak_rss_mb}
        now = None
        for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
        return {"now": now, "peak": self._peak_rss_mb(self._process.pid)}

    def log_tail(self, lines: int = 40) -> str:
        if self.work_dir is None or not (self.work_dir / "minicluster.log").exists():
            return ""
        return "\n".join((self.work_dir / "minicluster.log").read_text(errors="replace").splitlines()[-lines:])

    # -- what spark-submit needs ------------------------------------------------------------------------

    def env(self, default_fs: str | None = None) -> dict:
        """Environment for spark-submit (add to os.environ): the Hadoop configuration and the loopback address.

        Paths without a scheme are on HDFS (fs.defaultFS is ``hdfs_uri``, and Spark stages the application's
        files there); ``default_fs="file:///"`` gives a configuration with the local file system as the
        default instead (the NodeManager is on this machine, so local paths mean the same to every
        container), for jobs and tests that read and write plain local paths."""
        conf_dir = self.conf_dir if default_fs is None else self.conf_dir_for(default_fs)
        return {"HADOOP_CONF_DIR": str(conf_dir), "YARN_CONF_DIR": str(conf_dir),
                "SPARK_LOCAL_IP": LOOPBACK, "JAVA_HOME": str(self._java_home), "SPARK_HOME": str(spark_home())}

    def conf_dir_for(self, default_fs: str) -> Path:
        """A copy of ``conf_dir`` whose core-site.xml names another default file system."""
        folder = self.work_dir / f"conf-{hashlib.sha256(default_fs.encode()).hexdigest()[:8]}"
        if not folder.exists():
            partial = self.work_dir / f"{folder.name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(self.conf_dir, partial)
            (partial / "core-site.xml").write_text(
                '<?xml version="1.0"?>\n<configuration>\n'
                f"  <property><name>fs.defaultFS</name><value>{default_fs}</value></property>\n"
                "  <property><name>hadoop.security.authentication</name><value>simple</value></property>\n"
                "</configuration>\n")
            partial.rename(folder)
        return folder

    def spark_conf(self, python: str | None = None) -> dict:
        """Spark settings for a small application on this cluster: the NodeManager is on this machine, so
        pyspark's own jars (local:, nothing uploaded) and this Python serve the containers as they are."""
        python = python or sys.executable
        return {
            "spark.yarn.jars": f"local:{spark_home() / 'jars'}/*",
            "spark.pyspark.python": python,
            "spark.pyspark.driver.python": python,
            "spark.yarn.appMasterEnv.SPARK_LOCAL_IP": LOOPBACK,
            "spark.executorEnv.SPARK_LOCAL_IP": LOOPBACK,
            "spark.yarn.appMasterEnv.JAVA_HOME": str(self._java_home),
            "spark.executorEnv.JAVA_HOME": str(self._java_home),
            "spark.driver.memory": "512m",  # cluster mode: the driver is the application master
            "spark.yarn.am.memory": "512m",  # client mode's application master
            "spark.executor.memory": "512m",
            "spark.executor.instances": "1",
            "spark.executor.cores": "1",
            "spark.yarn.maxAppAttempts": "1",
            "spark.ui.enabled": "false",
            "spark.driver.extraJavaOptions": short_jvm_options(),
            "spark.yarn.am.extraJavaOptions": short_jvm_options(),
            "spark.executor.extraJavaOptions": short_jvm_options(),
        }

    # -- HDFS and YARN, through the launcher ---------------------------------------------------------------

    def _call(self, *fields: str, timeout: float = 120.0):
        if any("\t" in field or "\n" in field for field in fields):
            raise ValueError(f"tabs and newlines cannot be sent: {fields!r}")
        with self._lock:
            if not self.running():
                raise RuntimeError(f"the Hadoop minicluster is not running:\n{self.log_tail()}")
            self._process.stdin.write("\t".join(fields) + "\n")
            self._process.stdin.flush()
            try:
                line = self._answers.get(timeout=timeout)
            except queue.Empty:
                raise RuntimeError(f"no answer to {fields!r} in {timeout:.0f} s:\n{self.log_tail()}") from None
        if line is None:
            raise RuntimeError(f"the Hadoop minicluster ended during {fields!r}:\n{self.log_tail()}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise OSError(f"{fields[0]} {' '.join(fields[1:])}: {answer['error']}")
        return answer["result"]

    def put(self, local, hdfs_path: str) -> str:
        """Copy a local file or folder to HDFS (overwriting); returns the hdfs:// URI."""
        return self._call("put", str(Path(local).resolve()), hdfs_path)

    def get(self, hdfs_path: str, local) -> Path:
        """Copy an HDFS file or folder to a local path (no .crc files)."""
        return Path(self._call("get", hdfs_path, str(Path(local).resolve())))

    def ls(self, hdfs_path: str) -> list[dict]:
        """The entries of a folder: [{"path": hdfs://..., "dir": bool, "size": int}]."""
        return self._call("ls", hdfs_path)

    def lsr(self, hdfs_path: str) -> list[dict]:
        """Every file under a folder, recursively."""
        return self._call("lsr", hdfs_path)

    def cat(self, hdfs_path: str) -> str:
        return self._call("cat", hdfs_path)

    def mkdir(self, hdfs_path: str) -> bool:
        return self._call("mkdir", hdfs_path)

    def rm(self, hdfs_path: str) -> bool:
        return self._call("rm", hdfs_path)

    def exists(self, hdfs_path: str) -> bool:
        return self._call("exists", hdfs_path)

    def uri(self, hdfs_path: str) -> str:
        """hdfs://127.0.0.1:PORT/path for an absolute HDFS path."""
        return self.hdfs_uri + "/" + hdfs_path.lstrip("/")

    def fs_settings(self):
        """imagerank.fs settings that reach this HDFS as a Spark driver would set them from the Hadoop
        configuration: WebHDFS at the NameNode's HTTP address (no libhdfs here)."""
        from xml.etree import ElementTree

        from imagerank import fs

        props = {p.findtext("name"): p.findtext("value")
                 for p in ElementTree.parse(self.conf_dir / "hdfs-site.xml").getroot().iter("property")}
        authority = self.hdfs_uri.split("://", 1)[1]
        return fs.FsSettings(hdfs_client="webhdfs", hdfs_http=((authority, props["dfs.namenode.http-address"]),),
                             hdfs_user=os.environ.get("USER") or "root")

    def apps(self) -> list[dict]:
        """The ResourceManager's applications: id, name, type, user, queue, state, final_status, diagnostics."""
        return self._call("apps")

    def app(self, app_id: str) -> dict:
        (found,) = [app for app in self.apps() if app["id"] == app_id]
        return found

    def kill(self, app_id: str) -> bool:
        """Kill an application as ``yarn application -kill`` does (the ResourceManager stops its containers);
        whether the kill completed at once (else it completes shortly)."""
        return self._call("kill", app_id)

    def container_pids(self, app_id: str) -> dict[int, str]:
        """The running JVMs of an application's containers: {pid: "am" | "executor" | "driver"} ("driver":
        the application master of a cluster-mode application). Python workers are their children."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if app_id not in cmdline or "java" not in cmdline.split(" ", 1)[0]:
                continue
            if "CoarseGrainedExecutorBackend" in cmdline:
                found[int(entry.name)] = "executor"
            elif "org.apache.spark.deploy.yarn.ExecutorLauncher" in cmdline:
                found[int(entry.name)] = "am"
            elif "org.apache.spark.deploy.yarn.ApplicationMaster" in cmdline:
                found[int(entry.name)] = "driver"
        return found

    def app_logs(self, app_id: str) -> dict[str, str]:
        """The logs of an application's containers, read from the NodeManager's log folder:
        {"container_.../stderr": text, ...} (in cluster mode the driver's output is in the first one)."""
        logs = {}
        base = Path(self.info["yarn_work_dir"])
        if not base.is_absolute():
            base = self.work_dir / base
        for path in sorted(base.glob(f"*logDir*/{app_id}/container_*/*")):
            if path.is_file():
                logs[f"{path.parent.name}/{path.name}"] = path.read_text(errors="replace")
        return logs


def app_id_from(spark_submit_output: str) -> str | None:
    """The YARN application id that spark-submit's log names (the last one), or None."""
    found = re.findall(r"\bapplication_\d+_\d+\b", spark_submit_output)
    return found[-1] if found else None


# -- the pytest fixture: one cluster for the session, however many modules import the fixture -------------

_shared: MiniCluster | None = None
_users = 0
_unavailable: str | None = None
_failed: str | None = None
_shared_lock = threading.Lock()


def _acquire() -> MiniCluster:
    global _shared, _users, _unavailable, _failed
    with _shared_lock:
        if _unavailable is not None:
            _skip(_unavailable)
        if _failed is not None:  # started once and failed: not again for every test
            raise RuntimeError(_failed)
        if _shared is None:
            cluster = MiniCluster()
            try:
                cluster.start()
            except MiniClusterUnavailable as reason:
                _unavailable = f"no Hadoop minicluster: {reason}"
                _skip(_unavailable)
            except Exception as error:
                _failed = f"the Hadoop minicluster did not start: {error}"
                raise
            _shared = cluster
            print(f"\n[minicluster] Hadoop {cluster.hadoop_version} up in {cluster.timings['start_s']:.1f} s "
                  f"({cluster.hdfs_uri}, ResourceManager {cluster.info['rm_address']}; "
                  f"maven {cluster.timings['maven_s']:.1f} s, javac {cluster.timings['javac_s']:.1f} s)",
                  file=sys.stderr)
        _users += 1
        return _shared


def _release() -> None:
    global _shared, _users
    with _shared_lock:
        _users -= 1
        if _users == 0 and _shared is not None:
            cluster, _shared = _shared, None
            cluster.stop()
            print(f"\n[minicluster] stopped; the daemons' JVM peaked at {cluster.peak_rss_mb or 0:.0f} MB resident",
                  file=sys.stderr)


def _skip(reason: str):
    if os.environ.get("IMAGERANK_MINICLUSTER_REQUIRED") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def yarn_cluster():
    """A running MiniCluster (HDFS + YARN) shared by the whole test session, stopped at its end."""
    cluster = _acquire()
    try:
        yield cluster
    finally:
        _release()
