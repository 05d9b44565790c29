#!/usr/bin/env bash
# spark-submit on a YARN cluster (on EMR use conf/emr-step.json, on Dataproc conf/dataproc-job.sh),
# with the packed env from `make dist` (built with the nodes' Python: see the Makefile).
# Run from the repository root on a gateway/edge node; extra arguments go to jobs/pipeline.py.
set -euo pipefail
CONFIG=${CONFIG:-s3a://my-bucket/imagerank/pipeline.yaml}   # read by the driver, on a cluster node
# JVM packages, comma-separated (dist/jvm-packages.txt); empty: none. hadoop-aws must match the
# cluster's Hadoop (3.3.4 for Spark 3.5) and is needed for s3a:// only.
HADOOP_AWS=${HADOOP_AWS-org.apache.hadoop:hadoop-aws:3.3.4}
GRAPHFRAMES_PACKAGE=${GRAPHFRAMES_PACKAGE:-}   # rank --engine graphframes only: io.graphframes:graphframes-spark3_2.12:0.12.3
PACKAGES=$(echo "$HADOOP_AWS,$GRAPHFRAMES_PACKAGE" | sed -e 's/^,//' -e 's/,$//')

# spark-submit uploads the archive; YARN unpacks it as ./environment in every container, the
# driver's included (cluster mode). For --deploy-mode client the driver runs here: unpack the env
# here first (mkdir environment && tar -xzf dist/imagerank-env.tar.gz -C environment).
# No --properties-file: on Spark 3.5 it replaces the cluster's spark-defaults.conf.
spark-submit --master yarn --deploy-mode cluster \
  --archives dist/imagerank-env.tar.gz#environment \
  --conf spark.pyspark.python=./environment/bin/python \
  --conf spark.sql.execution.arrow.pyspark.enabled=true \
  --conf spark.sql.session.timeZone=UTC \
  ${PACKAGES:+--packages "$PACKAGES"} \
  jobs/pipeline.py --config "$CONFIG" "$@"
