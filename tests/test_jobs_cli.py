"""The jobs' command lines reach their stages with the options they name (in-process, the shared session)."""

import importlib.util
from pathlib import Path

from conftest import report_of

JOBS = Path(__file__).resolve().parents[1] / "jobs"


def _job(name):
    spec = importlib.util.spec_from_file_location(f"job_{name}", JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_rank_popularity_publish_command_lines(spark, sample_pipeline, tmp_path, capsys):
    root, catalog = sample_pipeline["root"], sample_pipeline["catalog"]
    assert _job("rank")(["--graph", str(root / "graph"), "--output", str(tmp_path / "rank"), "--max-iter", "3",
                         "--damping", "0.5", "--harmonic-engine", "hyperanf", "--log2m", "6"]) == 0
    report = report_of(tmp_path / "rank")
    page = report["levels"]["page_rank"]["pagerank"]
    assert page["iterations"] == 3 and not page["converged"] and report["options"]["damping"] == 0.5
    assert report["levels"]["host_rank"]["harmonic_centrality"]["engine"] == "hyperanf"
    assert _job("popularity")(["--catalog", catalog, "--output", str(tmp_path / "pop"), "--percentile", "0.5"]) == 0
    popularity = report_of(tmp_path / "pop")
    assert {c["percentile"] for c in popularity["constants"]} == {0.5}
    assert _job("publish")(["--catalog", catalog, "--ranks", str(tmp_path / "rank"), "--popularity",
                            str(tmp_path / "pop"), "--output", str(tmp_path / "table")]) == 0
    printed = capsys.readouterr().out
    assert '"rows_written": 24' in printed


def test_options_are_checked_before_any_work(tmp_path, capsys):
    """--max-page-bytes -1 would skip every record, --tol 0 run 1,000 iterations, --max-iter 0 report
    an infinite change: each is refused in one line, exit 2, before a session reads anything."""
    cases = [
        ("extract", ["--input", "x.warc.gz", "--max-page-bytes", "-1"], "--max-page-bytes: must be a positive whole number"),
        ("extract", ["--input", "x.warc.gz", "--max-failed-files", "1.5"], "--max-failed-files: must be a fraction"),
        ("rank", ["--graph", "g", "--tol", "0"], "--tol: must be a positive number"),
        ("rank", ["--graph", "g", "--max-iter", "0"], "--max-iter: must be a positive whole number"),
    ]
    for job, argv, message in cases:
        try:
            code = _job(job)(argv + ["--output", str(tmp_path / job)])
        except SystemExit as exit_:
            code = exit_.code
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and message in err[-1], (job, argv, err)
        assert not (tmp_path / job).exists()


def test_a_failure_ends_in_one_line_naming_it(spark, sample_pipeline, tmp_path, capsys):
    """A graph folder missing its vertices table: Spark's error is 30 lines up a Java trace; the job's
    last line names it, with the path, and --verbose prints the trace before it."""
    import shutil

    from conftest import run_dir

    graph = tmp_path / "graph"
    shutil.copytree(sample_pipeline["root"] / "graph", graph)
    shutil.rmtree(run_dir(graph) / "vertices")
    argv = ["--graph", str(graph), "--output", str(tmp_path / "rank")]
    assert _job("rank")(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rank: failed: ") and "vertices" in err[-1] and "previous output stays current" in err[-1]
    assert not any(line.lstrip().startswith("at org.apache") for line in err)
    assert _job("rank")(argv + ["--verbose"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rank: failed: ") and any("Traceback" in line for line in err)
    assert not (tmp_path / "rank" / "_CURRENT").exists()
