"""Downloads, fetched once into the cache (``${LOGDRIFT_CACHE:-~/.cache/logdrift}``) with Maven:
Kafka's jars and the Elasticsearch integ-test zip (unpacked where the ES user can reach it)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tools.servers.common import (
    DEPENDENCY_PLUGIN,
    ES_ARTIFACT,
    ES_SHARED_ROOT,
    ES_VERSION,
    KAFKA_VERSION,
    LOG4J_VERSION,
    ServerError,
    cache_dir,
    log,
    mkdirs_traversable,
    run,
)
from tools.servers.processes import chown_tree, ensure_es_user, is_root, traversable_by_others

_KAFKA_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>logdrift.tools</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def _kafka_home() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}"


def fetch_kafka() -> Path:
    """Jars of Kafka ``KAFKA_VERSION`` in ``<cache>/kafka-<v>/lib`` (fetched once)."""
    home = _kafka_home()
    lib = home / "lib"
    marker = home / ".complete"
    if marker.exists() and any(lib.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        return home
    log(f"fetching Kafka {KAFKA_VERSION} jars with Maven into {lib} ...")
    if shutil.which("mvn") is None:
        raise ServerError("mvn not found on PATH (needed once to fetch Kafka)")
    shutil.rmtree(lib, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_KAFKA_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
    run(
        [
            "mvn",
            "-B",
            "-ntp",
            "-q",
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DoutputDirectory=lib",
            "-DincludeScope=runtime",
        ],
        cwd=home,
        what=f"fetching Kafka {KAFKA_VERSION}",
    )
    jars = {p.name for p in lib.glob("*.jar")}
    for needed in (f"kafka_2.13-{KAFKA_VERSION}.jar", f"log4j-slf4j-impl-{LOG4J_VERSION}.jar"):
        if needed not in jars:
            raise ServerError(f"fetching Kafka: {needed} missing from {lib}")
    bindings = [j for j in jars if j.startswith(("slf4j-reload4j", "slf4j-log4j12", "logback"))]
    if bindings:
        raise ServerError(f"fetching Kafka: unexpected extra SLF4J bindings {bindings}")
    marker.write_text(f"{KAFKA_VERSION}\n")
    return home


def _es_zip() -> Path:
    return cache_dir() / f"elasticsearch-{ES_VERSION}.zip"


def _es_home() -> Path:
    """Where the unpacked ES lives: the cache if the ES user can reach it, else /var/tmp."""
    base = cache_dir()
    if is_root() and not traversable_by_others(base):
        base = ES_SHARED_ROOT
    return base / f"elasticsearch-{ES_VERSION}"


def fetch_es() -> Path:
    """Unpacked ES ``ES_VERSION`` home (zip fetched once into the cache, unzipped once)."""
    ids = ensure_es_user()
    zip_path = _es_zip()
    if not zip_path.exists():
        log(f"fetching {ES_ARTIFACT} with Maven into {zip_path.parent} ...")
        if shutil.which("mvn") is None:
            raise ServerError("mvn not found on PATH (needed once to fetch Elasticsearch)")
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="logdrift-mvn-") as tmp:
            mvn = ["mvn", "-B", "-ntp", "-q", f"{DEPENDENCY_PLUGIN}:copy"]
            mvn += [f"-Dartifact={ES_ARTIFACT}", f"-DoutputDirectory={tmp}"]
            run(
                mvn,
                cwd=Path(tmp),
                what=f"fetching Elasticsearch {ES_VERSION}",
            )
            got = Path(tmp) / zip_path.name
            if not got.exists():
                raise ServerError(f"fetching Elasticsearch: {got.name} not produced by Maven")
            shutil.move(str(got), zip_path.with_suffix(".part"))
            zip_path.with_suffix(".part").replace(zip_path)
    home = _es_home()
    marker = home / ".logdrift-complete"
    if marker.exists() and (home / "bin" / "elasticsearch").exists():
        return home
    log(f"unpacking {zip_path.name} into {home.parent}")
    if shutil.which("unzip") is None:
        raise ServerError("unzip not found (apt-get install unzip)")
    mkdirs_traversable(home.parent)
    shutil.rmtree(home, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".unzip-", dir=home.parent) as tmp:
        run(["unzip", "-q", str(zip_path), "-d", tmp], cwd=Path(tmp), what="unzip")
        inner = Path(tmp) / f"elasticsearch-{ES_VERSION}"
        if not (inner / "bin" / "elasticsearch").exists():
            raise ServerError(f"unexpected zip layout in {zip_path}")
        inner.rename(home)
    home.chmod(0o755)
    chown_tree(home, ids)
    marker.write_text(f"{ES_VERSION}\n")
    return home


def es_modules(home: Path) -> list[str]:
    mods = home / "modules"
    return sorted(p.name for p in mods.iterdir()) if mods.is_dir() else []
