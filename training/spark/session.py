"""The SparkSession: local mode on this machine by default, the cluster's under spark-submit."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class SparkOptions:
    """How to reach Spark. Under `spark-submit` the master and memory come from it instead."""

    master: str = "local[*]"
    driver_memory: str = "8g"  # local mode: the driver is the executor too
    shuffle_partitions: int | None = None  # default: 4 per core in local mode (Spark's 200 is for clusters)
    local_dir: str | None = None  # Spark's scratch space (shuffle files)


def spark_session(options: SparkOptions | None = None, app: str = "vitrine-train"):
    """A SparkSession: local mode with `options`, unless run under spark-submit."""
    from pyspark.sql import SparkSession

    options = options or SparkOptions()
    builder = SparkSession.builder.appName(app)
    # spark-submit starts the JVM first and hands Python its gateway: the master, memory and
    # the rest come from spark-submit then, and must not be overridden here.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if not submitted:
        builder = builder.master(options.master).config("spark.driver.memory", options.driver_memory)
        if options.master.startswith("local"):  # one machine: stay on the loopback interface
            builder = (builder.config("spark.driver.host", "127.0.0.1")
                       .config("spark.driver.bindAddress", "127.0.0.1"))
        cores = os.cpu_count() or 1
        builder = builder.config("spark.sql.shuffle.partitions",
                                 str(options.shuffle_partitions or 4 * cores))
    if options.local_dir:
        builder = builder.config("spark.local.dir", options.local_dir)
    spark = (builder
             .config("spark.ui.enabled", "false")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark
