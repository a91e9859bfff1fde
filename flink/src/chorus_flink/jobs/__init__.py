"""One module per Flink job. Each offers ``build(t_env, config) -> StatementSet``.

``build`` wires the job's tables and adds its statements; it does not execute them
(``chorus_flink.run`` does). The SQL of the transformation itself lives in plain functions
beside ``build``, testable without a cluster.
"""
