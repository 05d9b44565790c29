#!/usr/bin/env bash
# The pipeline as a Dataproc job (images 2.2/2.3: Spark 3.5, YARN), with the packed env.
# Before: `make dist` with the nodes' Python (the conda Python under /opt/conda; see README), then
#   gcloud storage cp -r dist "gs://$BUCKET/imagerank/"
#   gcloud storage cp my-pipeline.yaml "gs://$BUCKET/imagerank/pipeline.yaml"   # gs:// paths, see conf/pipeline.yaml
# Edit the variables (or set them in the environment); extra arguments go to jobs/pipeline.py.
set -euo pipefail
CLUSTER=${CLUSTER:-my-cluster}
REGION=${REGION:-us-central1}
BUCKET=${BUCKET:-my-bucket}
# For rank --engine graphframes only: GraphFrames' JVM package (Spark 3.5: Scala 2.12),
# see dist/jvm-packages.txt. Empty: no JVM package.
GRAPHFRAMES_PACKAGE=${GRAPHFRAMES_PACKAGE:-}   # rank --engine graphframes only: io.graphframes:graphframes-spark3_2.12:0.12.3

# Cluster mode: the driver runs in YARN beside the executors, where the archive is unpacked as
# ./environment (Dataproc's default, client mode, runs the driver on the master node's own Python).
gcloud dataproc jobs submit pyspark "gs://$BUCKET/imagerank/dist/jobs/pipeline.py" \
  --cluster="$CLUSTER" --region="$REGION" \
  --archives="gs://$BUCKET/imagerank/dist/imagerank-env.tar.gz#environment" \
  --properties="spark.submit.deployMode=cluster,spark.pyspark.python=./environment/bin/python,\
spark.sql.execution.arrow.pyspark.enabled=true,spark.sql.session.timeZone=UTC\
${GRAPHFRAMES_PACKAGE:+,spark.jars.packages=$GRAPHFRAMES_PACKAGE}" \
  -- --config "gs://$BUCKET/imagerank/pipeline.yaml" "$@"
