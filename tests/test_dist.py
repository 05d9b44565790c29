"""What `make dist` ships: the wheel holds the package, its config files and what the jobs import.

The wheel is built from a copy of the sources (pip wheel --no-deps, a few seconds). The packed
environment (the whole `make dist`: about 2 minutes here, most of it pip and gzip) is tested only
with IMAGERANK_TEST_DIST=1.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lib" / "imagerank"
JOBS = sorted((ROOT / "jobs").glob("*.py"))
# the distributions the graph extra adds (setup.py) and one the packed env must leave out
GRAPH = {"graphframes-py", "networkx", "scipy"}


def _copy_sources(dest: Path, *names: str) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package built as `make dist` builds it, from a copy (no build/ or egg-info left here)."""
    src = _copy_sources(tmp_path_factory.mktemp("src"), "setup.py", "lib")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(src)],
                   check=True)
    (path,) = out.glob("imagerank-*.whl")
    return path


def _job_imports() -> dict[str, set[str]]:
    """module -> names, for every `from imagerank... import ...` and `import imagerank...` in jobs/."""
    imports: dict[str, set[str]] = {}
    for job in JOBS:
        for node in ast.walk(ast.parse(job.read_text(), str(job))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("imagerank"):
                imports.setdefault(node.module, set()).update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("imagerank"):
                        imports.setdefault(alias.name, set())
    return imports


def test_wheel_holds_every_module_and_the_config_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert modules and modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    conf = {n for n in names if n.startswith("imagerank/conf/")}
    assert {"imagerank/conf/providers.yaml", "imagerank/conf/spark-local.conf"} <= conf
    shipped = {f"imagerank/conf/{p.name}" for p in (PACKAGE / "conf").iterdir() if p.suffix in (".yaml", ".conf", ".properties")}
    assert shipped <= conf, f"config files missing from the wheel: {sorted(shipped - conf)}"


def test_cluster_requirements_keep_the_graph_extra_and_leave_pyspark_out(wheel):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from dist_requirements import normalize, select, wheel_requirements
    finally:
        sys.path.pop(0)
    declared = wheel_requirements(str(wheel))
    assert any(r.startswith("pyspark") for r in declared)  # setup.py asks for it...
    chosen = select(declared, extras={"graph"}, exclude={"pyspark"})
    names = {normalize(re.match(r"[A-Za-z0-9._-]+", r).group(0)) for r in chosen}
    assert "pyspark" not in names  # ...the cluster's Spark brings it
    assert GRAPH <= names and {"pyarrow", "pandas", "fastwarc", "pyyaml"} <= names
    assert not [r for r in chosen if "extra ==" in r]
    assert not {"pytest", "moto"} & names  # other extras stay out


def test_the_installed_requirements_are_the_wheels(wheel):
    """make install takes its requirements from imagerank as installed here (editable, --no-deps): the
    same lines as the wheel's, for the same extras; the environment holds each of them."""
    from importlib.metadata import PackageNotFoundError, version

    tools = [sys.executable, str(ROOT / "tools" / "dist_requirements.py")]
    extras = ["--extra", "graph", "--extra", "test"]
    installed = subprocess.run([*tools, "--installed", "imagerank", *extras], capture_output=True, text=True)
    built = subprocess.run([*tools, str(wheel), *extras], capture_output=True, text=True)
    assert installed.returncode == built.returncode == 0, installed.stderr + built.stderr
    assert installed.stdout == built.stdout, (  # an environment made before setup.py last changed
        f"{sys.prefix}: imagerank's installed requirements are not setup.py's: make it again (make install, make .venv35/.installed)")
    assert "graphframes-py==" in installed.stdout and "pytest" in installed.stdout
    for line in installed.stdout.splitlines():
        if "python_version" not in line:  # a requirement for another Python
            try:
                version(re.match(r"[A-Za-z0-9._-]+", line).group(0))
            except PackageNotFoundError:
                raise AssertionError(f"{line}: not installed in this environment") from None


def test_locked_runs_one_command_at_a_time(tmp_path):
    """tools/locked.py, which the two environments' editable installs share: the second command starts
    once the first has ended, and its exit status comes back."""
    import time

    lock, log = tmp_path / "lock", tmp_path / "log"
    step = f"import time, sys; open({str(log)!r}, 'a').write('start '); time.sleep(0.5); " \
           f"open({str(log)!r}, 'a').write('end '); sys.exit(3)"
    started = time.monotonic()
    runs = [subprocess.Popen([sys.executable, str(ROOT / "tools" / "locked.py"), str(lock), sys.executable, "-c", step])
            for _ in range(2)]
    assert [run.wait(timeout=30) for run in runs] == [3, 3]
    assert log.read_text() == "start end start end " and time.monotonic() - started >= 1.0


def test_the_jobs_imports_resolve_from_the_wheel(wheel, tmp_path):
    """Every name the jobs import from imagerank, imported from the unpacked wheel, not from lib/."""
    imports = _job_imports()
    assert imports, "no imagerank import found in jobs/"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        f"for module, names in {sorted((m, sorted(n)) for m, n in imports.items())!r}:\n"
        "    mod = importlib.import_module(module)\n"
        f"    assert mod.__file__.startswith({str(site)!r}), (module, mod.__file__)\n"
        "    missing = [n for n in names if not hasattr(mod, n)]\n"
        "    assert not missing, (module, missing)\n"
        "from imagerank.spark import package_conf\n"
        "assert 'spark.' in package_conf('spark-local.conf') and package_conf('providers.yaml')\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


@pytest.mark.skipif(os.environ.get("IMAGERANK_TEST_DIST") != "1",
                    reason="the full `make dist` (packed env) takes about 2 minutes: set IMAGERANK_TEST_DIST=1")
def test_make_dist_packs_an_env_that_runs_elsewhere_without_pyspark(tmp_path):
    repo = _copy_sources(tmp_path / "repo", "Makefile", "setup.py", "lib", "jobs", "conf", "tools")
    subprocess.run(["make", "-C", str(repo), "dist", f"PYTHON={sys.executable}"], check=True,
                   capture_output=True)
    dist = repo / "dist"
    assert {p.name for p in dist.iterdir()} >= {"imagerank.zip", "imagerank-env.tar.gz", "jvm-packages.txt",
                                               "requirements-cluster.txt", "jobs"}
    assert {p.name for p in (dist / "jobs").iterdir()} == {p.name for p in JOBS}
    pins = (dist / "requirements-cluster.txt").read_text().lower()
    assert "pyspark" not in pins and "imagerank" not in pins and "scipy==" in pins
    env = tmp_path / "elsewhere" / "environment"  # unpacked away from where it was built
    env.mkdir(parents=True)
    with tarfile.open(dist / "imagerank-env.tar.gz") as archive:
        archive.extractall(env)
    python = str(env / "bin" / "python")
    no_spark = subprocess.run([python, "-c", "import pyspark"], capture_output=True, env={"PATH": os.environ["PATH"]})
    assert no_spark.returncode != 0, "the packed env must not hold pyspark"
    # With the Spark of this test run on PYTHONPATH (as spark-submit puts the cluster's), every job's import works.
    import pyspark
    import py4j

    spark_path = tmp_path / "spark-python"
    spark_path.mkdir()
    for module in (pyspark, py4j):
        (spark_path / module.__name__).symlink_to(Path(module.__file__).parent)
    probe = ("import sys, imagerank, scipy, networkx\n"
             f"assert imagerank.__file__.startswith({str(env)!r})\n"
             + "".join(f"import {m}\n" for m in sorted(_job_imports())) + "print('ok')")
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(spark_path)})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
