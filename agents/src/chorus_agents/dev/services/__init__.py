"""The real services a local run needs, installed once into the cache and started here.

- :mod:`.base`: the cache, free ports, waiting, process groups, the :class:`~.base.Service`
  lifecycle (``up``/``down``/``session``);
- :mod:`.kafka`: a single-node Kafka (KRaft) from Maven Central's jars (``kafka-pom.xml``);
- :mod:`.flink`: flink/'s venv (synced with uv) and the Kafka SQL connector jar; each job
  brings its own mini-cluster.

``chorus dev up`` uses them; the tests' harness (``tests/services``) re-exports them.
"""
