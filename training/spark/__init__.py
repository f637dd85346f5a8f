"""Training on Spark: MLlib's ALS, and a front that reads the events and builds the confidence
matrix in Spark (training/spark/pipeline.py), for stores past one machine. Needs `vitrine[spark]`
(pyspark) and Java 17; nothing here is imported unless the Spark engine is chosen."""
