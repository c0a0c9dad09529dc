"""Provision, start, check and stop real single-node test servers, without Docker.

* Apache Kafka (KRaft, combined broker + controller), jars fetched from Maven Central.
* Elasticsearch, the ``integ-test-zip`` distribution fetched from Maven Central.

Command line (from the repository root)::

    python -m tools.servers up kafka|es|all [--partitions N]
    python -m tools.servers down kafka|es|all
    python -m tools.servers status
    python -m tools.servers env          # export LOGDRIFT_TEST_KAFKA=... / LOGDRIFT_TEST_ES=...

From Python (pytest fixtures)::

    from tools.servers import start_kafka, stop_kafka, start_es, stop_es

Downloads are cached in ``${LOGDRIFT_CACHE:-$HOME/.cache/logdrift}``; runtime state (data,
logs, pid files, ports) lives in ``${LOGDRIFT_RUN_DIR:-<repo>/.servers}``. Everything binds
to 127.0.0.1. Standard library only, except the Kafka readiness check, which needs aiokafka
(here or in the repository's ``.venv``).

Modules: ``common`` (versions, paths, types, small helpers), ``processes`` (pids, JDKs, the ES
user), ``downloads`` (the Maven-fetched cache), ``kafka``, ``elasticsearch``, ``cli``.
"""

from tools.servers.common import ES_VERSION, KAFKA_VERSION, REPO_ROOT, ServerError, ServerInfo
from tools.servers.elasticsearch import es_status, start_es, stop_es
from tools.servers.kafka import kafka_status, start_kafka, stop_kafka

__all__ = [
    "ES_VERSION",
    "KAFKA_VERSION",
    "REPO_ROOT",
    "ServerError",
    "ServerInfo",
    "es_status",
    "kafka_status",
    "start_es",
    "start_kafka",
    "stop_es",
    "stop_kafka",
]
