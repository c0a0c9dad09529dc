"""The command line: ``python -m tools.servers up|down|status|env``."""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import time
from collections.abc import Sequence

from tools.servers.common import DEFAULT_PARTITIONS, ServerError, ServerInfo
from tools.servers.elasticsearch import es_status, start_es, stop_es
from tools.servers.kafka import kafka_status, start_kafka, stop_kafka
from tools.servers.kafka_ready import kafka_roundtrip_check


def _describe(info: ServerInfo) -> str:
    if info.name == "kafka":
        return (
            f"kafka {info.version}: bootstrap={info.url} pid={info.pid} "
            f"partitions={info.extra['partitions']} ready-check={info.extra['readiness']}\n"
            f"  log: {info.log_file}"
        )
    return (
        f"es {info.version}: url={info.url} pid={info.pid} ({info.extra['root_endpoint']})\n"
        f"  modules: {info.extra['modules']}\n"
        f"  log: {info.log_file}"
    )


def _exports(kafka: ServerInfo | None, es: ServerInfo | None) -> list[str]:
    lines = []
    if kafka:
        lines.append(f"export LOGDRIFT_TEST_KAFKA={kafka.url}")
    if es:
        lines.append(f"export LOGDRIFT_TEST_ES={es.url}")
    return lines


def _targets(which: str) -> list[str]:
    return ["kafka", "es"] if which == "all" else [which]


def _cli_up(names: list[str], partitions: int) -> int:
    """Start the servers (in parallel: ES boots while Kafka does), print how to reach them."""

    def one(name: str) -> tuple[ServerInfo, str]:
        t0 = time.monotonic()
        was = kafka_status() if name == "kafka" else es_status()
        info = start_kafka(partitions) if name == "kafka" else start_es()
        return info, "already up" if was else f"up in {time.monotonic() - t0:.1f} s"

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {name: pool.submit(one, name) for name in names}
        infos: dict[str, ServerInfo] = {}
        failed = False
        for name, future in futures.items():
            try:
                info, verb = future.result()
            except ServerError as exc:
                print(f"ERROR: {name}: {exc}", file=sys.stderr)
                failed = True
                continue
            print(f"{_describe(info)}\n  ({verb})")
            infos[name] = info
    print("\n".join(_exports(infos.get("kafka"), infos.get("es"))))
    return 1 if failed else 0


_DESCRIPTION = "Start, check and stop the single-node Kafka and Elasticsearch test servers."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.servers", description=_DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{up,down,status,env}")
    up = sub.add_parser("up", help="fetch (cached), start, wait until ready")
    up.add_argument("which", choices=["kafka", "es", "all"])
    up.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    down = sub.add_parser("down", help="stop (SIGTERM, 30 s, SIGKILL)")
    down.add_argument("which", choices=["kafka", "es", "all"])
    sub.add_parser("status", help="what runs, where")
    sub.add_parser("env", help="print shell export lines for the running servers")
    check = sub.add_parser("_kafka-check")  # internal: aiokafka round trip in the venv
    check.add_argument("bootstrap")
    check.add_argument("timeout", type=float)
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            return _cli_up(_targets(args.which), args.partitions)
        elif args.command == "down":
            for name in _targets(args.which):
                stop_kafka() if name == "kafka" else stop_es()
                print(f"{name}: down")
        elif args.command == "status":
            for name, info in (("kafka", kafka_status()), ("es", es_status())):
                print(_describe(info) if info else f"{name}: not running")
        elif args.command == "env":
            kafka, es = kafka_status(), es_status()
            for name, info in (("kafka", kafka), ("es", es)):
                if info is None:
                    print(f"# {name} not running (python -m tools.servers up {name})")
            print("\n".join(_exports(kafka, es)))
            return 0 if (kafka or es) else 1
        elif args.command == "_kafka-check":
            print(kafka_roundtrip_check(args.bootstrap, args.timeout))
    except ServerError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
