# imagerank: `make demo` runs the pipeline on the embedded sample; `make test` runs the tests.
# Both install what they need into .venv first. `make test-spark35` runs the tests on pyspark 3.5
# (the Spark of EMR 7 and Dataproc 2.2/2.3) in .venv35, pinned by requirements/spark35.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENV35 := .venv35
PY35 := $(VENV35)/bin/python
STAMP35 := $(VENV35)/.installed
PINS35 := requirements/spark35.txt
SAMPLE := data/sample
DEMO := data/demo

.PHONY: install gcs test test-slow test-slow-nohadoop test-all test-yarn test-spark35 test-spark35-fast test-spark35-yarn test-spark35-slow-nohadoop test-spark35-nohadoop test-spark35-all demo bench dist clean browser postgres

# Each environment: made afresh, this checkout installed editable (--no-deps), then the requirements of its
# extras, as that install recorded them. Every build of this checkout writes lib/imagerank.egg-info and build/
# (the editable installs here, make dist's wheel): one at a time, under one lock (tools/locked.py), so that
# the two environments can be made at once (.ci/run does) and make dist can run beside them.
# $(call environment,VENV,EXTRAS,PIP ARGS): the recipe both environments follow
BUILD_LOCKED = $(PYTHON) tools/locked.py lib/.egg-info.lock
define environment
	$(PYTHON) -m venv --clear $(1)
	$(1)/bin/python -m pip install --quiet --upgrade pip
	$(BUILD_LOCKED) $(1)/bin/python -m pip install --quiet --no-deps -e .
	$(1)/bin/python tools/dist_requirements.py --installed imagerank $(foreach e,$(2),--extra $(e)) \
	  > $(1)/requirements.txt
	$(1)/bin/python -m pip install --quiet $(3) -r $(1)/requirements.txt
	touch $(1)/.installed
endef

$(STAMP): setup.py
	$(call environment,$(VENV),graph test local embed demo)

# pyspark 3.5 pinned; setuptools: pyspark 3.5 imports distutils, which Python 3.12 no longer ships
$(STAMP35): setup.py $(PINS35)
	$(call environment,$(VENV35),graph test content,-c $(PINS35) setuptools)

install: $(STAMP)

# The report test opens the run report in Debian's Chromium; installed here where this runs as root
# with apt (as CI does), else that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } || \
	  echo "no chromium: the headless-browser test of the report will skip"

# The PostgreSQL tests start a real server (Debian's postgresql package: initdb, pg_ctl), installed
# here where this runs as root with apt (as CI does), else those tests skip and say why.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1; } || \
	  echo "no PostgreSQL server: the database tests will skip"

# The GCS tests serve Cloud Storage's JSON API on loopback (fake-gcs-server, built here with Go from its module
# proxy) and reach it through Hadoop's GCS connector (its shaded jar, from Maven Central), both kept in .tools/
# (tests/gcs_server.py); where Go or the download fails, those tests skip and say why.
GCS_SERVER_VERSION := 1.56.1
# The connector: 4.0 for Spark 4 (it needs Hadoop 3.4); the 2.2 line for pyspark 3.5's Hadoop 3.3.4 (3.x needs 3.3.5).
GCS_CONNECTOR_VERSIONS := 4.0.4 hadoop3-2.2.22
gcs:
	@mkdir -p .tools
	@[ -x .tools/fake-gcs-server ] || { command -v go >/dev/null 2>&1 && \
	  GOBIN=$(CURDIR)/.tools go install github.com/fsouza/fake-gcs-server@v$(GCS_SERVER_VERSION) >/dev/null 2>&1; } || \
	  echo "no fake-gcs-server (Go could not build it): the GCS tests will skip"
	@for v in $(GCS_CONNECTOR_VERSIONS); do jar=.tools/gcs-connector-$$v-shaded.jar; [ -f $$jar ] || \
	  { curl -sfL -o $$jar.$$$$.part https://repo.maven.apache.org/maven2/com/google/cloud/bigdataoss/gcs-connector/$$v/gcs-connector-$$v-shaded.jar && \
	  mv $$jar.$$$$.part $$jar; } || \
	  { rm -f $$jar.$$$$.part; echo "no GCS connector $$v (Maven Central unreachable): its GCS tests will skip"; }; done

# make test: every test but the slow batch (marked slow in pytest.ini: spark-submit end to end in
# local-cluster, on YARN and HDFS, to S3 and Iceberg); make test-slow: that batch alone; make test-all: both;
# make test-yarn: the tests on real Hadoop daemons alone (YARN and HDFS: one shared cluster; pytest marker
# hadoop, set by tests/conftest.py); make test-slow-nohadoop: the rest of the slow batch.
# PYTEST_ARGS goes to each pytest run; TESTS names what it collects (default: all of tests/), e.g.
# make test-slow-nohadoop TESTS=tests/test_iceberg.py.
# One file: .venv/bin/python -m pytest tests/test_rank.py (add -m "not slow" to leave its slow cases out).
PYTEST_ARGS ?=
TESTS ?= tests
# make test (and test-spark35-fast) run in TEST_WORKERS pytest processes (pytest-xdist; 2, this machine's
# cores), each with its own Spark session, a whole test file to one process at a time (--dist loadfile:
# a file's module fixtures are set up once); the sample and its reference pipeline are built once for all
# (tests/conftest.py). TEST_WORKERS=1: one process.
TEST_WORKERS ?= 2
XDIST = $(if $(filter-out 0 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)
test: $(STAMP) browser postgres gcs
	$(PY) -m pytest -q --durations=15 $(XDIST) -m "not slow" $(PYTEST_ARGS) $(TESTS)

test-slow: $(STAMP) postgres gcs
	$(PY) -m pytest -q --durations=15 -m slow $(PYTEST_ARGS) $(TESTS)

test-all: $(STAMP) browser postgres gcs
	$(PY) -m pytest -q --durations=15 $(PYTEST_ARGS) $(TESTS)

test-yarn: $(STAMP)
	$(PY) -m pytest -q --durations=15 -m hadoop $(PYTEST_ARGS) $(TESTS)

test-slow-nohadoop: $(STAMP) postgres gcs
	$(PY) -m pytest -q --durations=15 -m "slow and not hadoop" $(PYTEST_ARGS) $(TESTS)

# Spark 3.5: the suite without the slow batch (test-spark35-fast), then the tests on YARN and HDFS
# (test-spark35-yarn: EMR 7 and Dataproc 2.2/2.3 run 3.5 on YARN, against Hadoop 3.3.4's daemons);
# test-spark35-slow-nohadoop: the rest of the slow batch on 3.5; test-spark35-nohadoop: all but the tests on
# YARN and HDFS, in one pytest run; test-spark35-all: everything
test-spark35: test-spark35-fast test-spark35-yarn

test-spark35-fast: $(STAMP35) postgres gcs
	$(PY35) -c "import pyspark; print('pyspark', pyspark.__version__)"
	$(PY35) -m pytest -q --durations=15 $(XDIST) -m "not slow" $(PYTEST_ARGS) $(TESTS)

test-spark35-yarn: $(STAMP35)
	$(PY35) -m pytest -q --durations=15 -m hadoop $(PYTEST_ARGS) $(TESTS)

test-spark35-slow-nohadoop: $(STAMP35) postgres gcs
	$(PY35) -m pytest -q --durations=15 -m "slow and not hadoop" $(PYTEST_ARGS) $(TESTS)

test-spark35-nohadoop: $(STAMP35) postgres gcs
	$(PY35) -m pytest -q --durations=15 -m "not hadoop" $(PYTEST_ARGS) $(TESTS)

test-spark35-all: $(STAMP35) postgres gcs
	$(PY35) -m pytest -q --durations=15 $(PYTEST_ARGS) $(TESTS)

# the sample writes its crawl, catalog and trusted_sources.yaml, the last file: one target for all
$(SAMPLE)/trusted_sources.yaml: lib/imagerank/sample.py | $(STAMP)
	$(PY) -m imagerank.sample --output $(SAMPLE)

# One Spark session: the pipeline (jobs/pipeline.py's run_pipeline, conf/pipeline.yaml), then a look at its tables.
$(SAMPLE)/images/catalog.csv: | $(STAMP)
	$(PY) -m imagerank.sample_images --output $(SAMPLE)/images

demo: $(STAMP) $(SAMPLE)/trusted_sources.yaml $(SAMPLE)/images/catalog.csv
	$(PY) -m imagerank.demo --config conf/pipeline.yaml --images $(SAMPLE)/images

# bench_scale: every stage under spark-submit on generated crawls of 10^4, 10^5 and 10^6 pages
# (BENCH_SCALE_SIZES=10000,100000 for a shorter run); crawls cached in /tmp/imagerank-bench-scale
bench: $(STAMP) postgres
	$(PY) bench/bench_extract.py
	$(PY) bench/bench_pagerank.py
	$(PY) bench/bench_content.py
	$(PY) bench/bench_postgres.py
	$(PY) bench/bench_graph.py
	$(PY) bench/bench_increment.py
	$(PY) bench/bench_scale.py

# `make dist`: what a cluster needs, in dist/ (README: "Running on a cluster"). It uses only $(PYTHON)
# (venv, pip), not .venv, and starts from scratch each time (setuptools would reuse a stale build/lib).
#   PYTHON         the interpreter the packed env is built on and linked to (venv-pack copies no
#                  interpreter): the nodes need the same X.Y at the same path, so build on a machine
#                  like them, e.g. `make dist PYTHON=python3.11` on the EMR primary node
#   PYTHON_PREFIX  where that interpreter lives on the nodes when it lives elsewhere here (EMR 7:
#                  /usr for /usr/bin/python3.11); the env's python links are pointed there (done
#                  here: venv-pack 0.2.0's --python-prefix turns bin/python3.11 into python3.113.11)
#   SPARK          the cluster's Spark line, 3.5 (EMR 7, Dataproc 2.2/2.3) or 4: the env follows
#                  conf/constraints-spark$(SPARK).txt (what that pyspark asks of numpy, pandas, pyarrow)
#   EXTRAS         the extras packed (default graph); EXTRAS=graph,content for the content stages with
#                  the model-free backend only, EXTRAS=graph,embed with text embeddings (torch: several GB)
PYTHON_PREFIX ?=
SPARK ?= 3.5
EXTRAS ?= graph
comma := ,
DIST := dist
DIST_BUILD := build/dist
DIST_ENV := $(DIST_BUILD)/env
# what the env must import (imagerank itself needs pyspark, which the cluster brings)
DIST_IMPORTS := pyarrow,pandas,numpy,fastwarc,selectolax,ada_url,publicsuffixlist,urllib3,boto3,yaml,warcio,bs4,lxml,networkx,scipy

dist:
	rm -rf $(DIST)
	@echo "== the package: a wheel, and a zip of it for --py-files"
	$(BUILD_LOCKED) sh -c 'rm -rf build lib/imagerank.egg-info && \
	  $(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir $(DIST) .'
	mkdir -p $(DIST)/jobs $(DIST_BUILD)
	cd lib && zip -qr $(abspath $(DIST))/imagerank.zip imagerank -x '*__pycache__*'
	cp jobs/*.py $(DIST)/jobs/
	cp conf/jvm-packages.txt $(DIST)/
	@echo "== the Python environment: the wheel, its extras ($(EXTRAS)) and their dependencies; no pyspark (the cluster's Spark brings it)"
	$(PYTHON) tools/dist_requirements.py $(DIST)/imagerank-*.whl $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) --exclude pyspark \
	  > $(DIST_BUILD)/requirements.in
	$(PYTHON) -m venv $(DIST_ENV)
	$(DIST_ENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  -r $(DIST_BUILD)/requirements.in -c conf/constraints-spark$(SPARK).txt
	$(DIST_ENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $(DIST)/imagerank-*.whl
	@echo "== less to unpack: the packages' own test suites out (no job imports them; a third of the env's files)"
	find $(DIST_ENV)/lib -type d -name tests -path '*/site-packages/*' -prune -exec rm -rf {} +
	$(DIST_ENV)/bin/python -c "import $(DIST_IMPORTS); from importlib import resources; \
	  assert resources.files('imagerank.conf').joinpath('providers.yaml').is_file()"
	$(DIST_ENV)/bin/python -m pip freeze --exclude imagerank > $(DIST)/requirements-cluster.txt
	@if [ -n "$(PYTHON_PREFIX)" ]; then \
	  v=$$($(DIST_ENV)/bin/python -c 'import sys; print("python%d.%d" % sys.version_info[:2])'); \
	  for link in $(DIST_ENV)/bin/python*; do \
	    case "$$(readlink "$$link")" in /*) ln -sfn "$(PYTHON_PREFIX)/bin/$$v" "$$link";; esac; done; \
	  sed -i -e "s#^home = .*#home = $(PYTHON_PREFIX)/bin#" \
	    -e "s#^executable = .*#executable = $(PYTHON_PREFIX)/bin/$$v#" $(DIST_ENV)/pyvenv.cfg; \
	  echo "env python -> $(PYTHON_PREFIX)/bin/$$v"; fi
	$(PYTHON) -m venv $(DIST_BUILD)/tools
	$(DIST_BUILD)/tools/bin/python -m pip install --quiet --disable-pip-version-check venv-pack
	$(DIST_BUILD)/tools/bin/venv-pack --quiet --prefix $(DIST_ENV) --output $(DIST)/imagerank-env.tar.gz
	chmod 644 $(DIST)/imagerank-env.tar.gz
	@ls -lh $(DIST) | sed 1d

clean:
	rm -rf $(DEMO) $(SAMPLE) dist build *.egg-info lib/*.egg-info
