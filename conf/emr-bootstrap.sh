#!/bin/bash
# EMR 7.x bootstrap action (runs on every node before Spark starts).
#   no argument:   makes sure /usr/bin/python3.11 is there, for the packed env (conf/emr-step.json)
#   a dist/ URL:   also installs imagerank and its graph extra into that python3.11, the alternative
#                  to the packed env: submit without --archives, with spark.pyspark.python=/usr/bin/python3.11
#   aws emr create-cluster ... --bootstrap-actions \
#     Path=s3://BUCKET/imagerank/emr-bootstrap.sh,Args=[s3://BUCKET/imagerank/dist]
set -euo pipefail
DIST=${1:-}

# EMR 7 runs on Amazon Linux 2023, whose python3 is 3.9; imagerank needs 3.10+.
if ! command -v python3.11 >/dev/null || ! python3.11 -m pip --version >/dev/null 2>&1; then
  sudo dnf install -y python3.11 python3.11-pip
fi
[ -z "$DIST" ] && exit 0

work=$(mktemp -d)
aws s3 cp "$DIST/" "$work/" --recursive --exclude '*' --include 'imagerank-*.whl' --include 'requirements-cluster.txt'
# The versions the packed env was built with (make dist), pyspark left out: the cluster brings
# its own, and `pip install imagerank[graph]` would fetch one from PyPI. Then the wheel, alone.
sudo python3.11 -m pip install --quiet -r "$work/requirements-cluster.txt"
sudo python3.11 -m pip install --quiet --no-deps "$work"/imagerank-*.whl
python3.11 -c "import imagerank, scipy, networkx, pyarrow"
