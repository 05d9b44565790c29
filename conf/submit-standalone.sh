#!/usr/bin/env bash
# spark-submit to a Spark standalone cluster with the packed env from `make dist`. Standalone runs
# Python applications in client mode only: the driver runs here, so the env is unpacked here too
# and ./environment/bin/python names it for the driver and, through --archives, for the executors.
# Every path the pipeline reads or writes must be shared (s3a://, gs://, hdfs://), not local.
# Run from the repository root; extra arguments go to jobs/pipeline.py.
set -euo pipefail
MASTER=${MASTER:-spark://spark-master:7077}
CONFIG=${CONFIG:-conf/pipeline-cluster.yaml}          # read by the driver, here
HADOOP_AWS=${HADOOP_AWS-org.apache.hadoop:hadoop-aws:3.3.4}   # s3a:// (must match Spark's Hadoop; dist/jvm-packages.txt)
GRAPHFRAMES_PACKAGE=${GRAPHFRAMES_PACKAGE:-}   # rank --engine graphframes only: io.graphframes:graphframes-spark3_2.12:0.12.3
PACKAGES=$(echo "$HADOOP_AWS,$GRAPHFRAMES_PACKAGE" | sed -e 's/^,//' -e 's/,$//')

[ -x environment/bin/python ] || { mkdir -p environment && tar -xzf dist/imagerank-env.tar.gz -C environment; }
spark-submit --master "$MASTER" \
  --archives dist/imagerank-env.tar.gz#environment \
  --conf spark.pyspark.python=./environment/bin/python \
  --conf spark.sql.execution.arrow.pyspark.enabled=true \
  --conf spark.sql.session.timeZone=UTC \
  ${PACKAGES:+--packages "$PACKAGES"} \
  jobs/pipeline.py --config "$CONFIG" "$@"
