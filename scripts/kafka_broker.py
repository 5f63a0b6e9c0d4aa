#!/usr/bin/env python3
"""A real, single-node Apache Kafka 4.x broker for kafkaops' tests and for local use.

This module owns three things and nothing else:

* the broker's jars: ``ensure_kafka()`` resolves ``org.apache.kafka:kafka_2.13`` and its
  runtime dependencies from Maven Central (through ``mvn`` and ``scripts/kafka/pom.xml``) into
  a per-user cache outside the work tree, ``~/.cache/kafkaops/kafka-<version>/libs`` (root
  overridable with ``$KAFKAOPS_KAFKA_CACHE``), once;
* the broker process: ``start_broker()`` formats a fresh KRaft combined-mode (broker +
  controller) log dir in a work dir, starts the JVM listening on loopback only, waits until it
  answers metadata requests and hands back a ``Broker`` that stops it again;
* the ``scripts/kafka-broker`` command line: ``fetch`` (fill the cache) and ``run`` (a broker
  in the foreground until SIGINT/SIGTERM).

It is stdlib-only so that it runs before any project dependency is installed;
``confluent_kafka`` is used for the readiness probe when it is importable, with a raw Kafka
ApiVersions probe as the fallback.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

DEFAULT_KAFKA_VERSION = "4.4.0"
POM_PATH = Path(__file__).resolve().parent / "kafka" / "pom.xml"
CACHE_ENV = "KAFKAOPS_KAFKA_CACHE"
DEFAULT_STARTUP_TIMEOUT = 90.0
LOOPBACK = "127.0.0.1"

# Light JVM for a 2-core box shared with PostgreSQL and the test run: the serial collector
# has the smallest footprint and no GC threads, and stopping at C1 makes startup (which is
# dominated by loading and first-running Scala/Kafka classes) faster, while the throughput
# lost to skipping C2 does not matter at test volumes.
JVM_FLAGS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Xshare:auto",
    "-Djava.awt.headless=true",
)
# The storage tool only writes two small files.
STORAGE_TOOL_JVM_FLAGS: tuple[str, ...] = (
    "-Xmx128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)


class KafkaBrokerError(RuntimeError):
    """The broker could not be fetched, formatted or started."""


class KafkaToolMissingError(KafkaBrokerError):
    """``java`` or ``mvn`` is not installed: the caller may skip rather than fail."""


# --------------------------------------------------------------------------- the jars


def cache_root() -> Path:
    """Where fetched Kafka versions live; outside the work tree so that a fresh clone or a
    ``git clean`` does not throw away a 40 MB download."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "kafkaops"


def libs_dir(version: str = DEFAULT_KAFKA_VERSION) -> Path:
    return cache_root() / f"kafka-{version}" / "libs"


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if not found:
        raise KafkaToolMissingError("`java` not found (Kafka 4 needs Java 17 or newer)")
    return found


def find_mvn() -> str:
    found = shutil.which("mvn")
    if not found:
        raise KafkaToolMissingError("`mvn` not found (needed once to fetch the Kafka jars)")
    return found


def _pom_digest() -> str:
    return hashlib.sha256(POM_PATH.read_bytes()).hexdigest()


_STAMP = ".kafkaops-pom-sha256"


def _cache_is_current(libs: Path, version: str) -> bool:
    # A changed pom (say, one more runtime dependency) must invalidate the cache, otherwise a
    # developer with an old cache would test against a different classpath than CI.
    stamp = libs / _STAMP
    return (
        (libs / f"kafka_2.13-{version}.jar").is_file()
        and stamp.is_file()
        and stamp.read_text().strip() == _pom_digest()
    )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Two pytest sessions (or a session and `make kafka-cache`) may fetch at once; the lock
    # keeps them from racing on the final rename.
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_kafka(version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """Return the directory holding Kafka ``version``'s jars, fetching them on first use.

    The download goes into a temporary sibling directory that is renamed into place only
    when Maven succeeded, so an interrupted fetch never leaves a half-filled cache behind.
    Raises ``KafkaToolMissingError`` if ``java`` or ``mvn`` is missing and
    ``KafkaBrokerError`` if Maven fails.
    """
    libs = libs_dir(version)
    find_java()  # without Java the jars are useless, so say so before a download
    if _cache_is_current(libs, version):
        return libs
    mvn = find_mvn()
    version_dir = libs.parent
    version_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(version_dir / ".lock"):
        if _cache_is_current(libs, version):
            return libs
        # Leftovers of a fetch that was SIGKILLed (so its cleanup never ran); the lock
        # guarantees no live fetch owns them.
        for leftover in version_dir.glob(".libs-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=".libs-", dir=version_dir))
        try:
            # Maven runs on a copy of the pom in the staging area so that it never writes
            # into the work tree (no target/, works from a read-only checkout).
            shutil.copy2(POM_PATH, staging / "pom.xml")
            out_dir = staging / "libs"
            cmd = [
                mvn,
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(staging / "pom.xml"),
                "dependency:copy-dependencies",
                f"-Dkafka.version={version}",
                f"-DoutputDirectory={out_dir}",
            ]
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
            if proc.returncode != 0 or not (out_dir / f"kafka_2.13-{version}.jar").is_file():
                output = (proc.stdout + proc.stderr).strip().splitlines()
                tail = "\n".join(output[-30:])
                raise KafkaBrokerError(
                    f"fetching Kafka {version} with Maven failed (exit {proc.returncode}):\n"
                    f"$ {' '.join(cmd)}\n{tail}"
                )
            (out_dir / _STAMP).write_text(_pom_digest() + "\n")
            if libs.exists():
                # Stale cache from an older pom: move it aside first; a crash between the
                # two renames leaves no libs/ at all, which simply means "fetch again".
                shutil.move(str(libs), str(staging / "old-libs"))
            os.rename(out_dir, libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return libs


# --------------------------------------------------------------------------- the broker


def _free_loopback_ports(count: int) -> list[int]:
    # Hold all sockets open until every port is chosen so the kernel cannot hand out the
    # same port twice.
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _new_cluster_id() -> str:
    # Same shape as Kafka's Uuid.randomUuid().toString(): URL-safe base64 of 16 random bytes
    # without padding. Kafka rejects ids starting with '-' on the command line.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


# Changes the broker's settings in place before they are written; gets the one extra free
# loopback port start_broker picked for it (a second client listener, say).
SettingsHook = Callable[[dict[str, str], int], None]


def _server_properties(
    data_dir: Path,
    port: int,
    controller_port: int,
    hook: SettingsHook | None = None,
    extra_port: int = 0,
) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LOOPBACK}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        # One node: every internal topic must be satisfiable with a single replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # The defaults (50 partitions each) make the first consumer group and the first
        # transactional producer wait for 50 partition leaders; one is enough here.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "num.partitions": "1",
        "delete.topic.enable": "true",
        "log.segment.bytes": str(16 * 1024 * 1024),
        # The cleaner's default 128 MiB dedupe buffer would take a quarter of the heap.
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        "num.network.threads": "2",
        "num.io.threads": "4",
        "background.threads": "4",
    }
    if hook is not None:
        hook(settings, extra_port)
    return "".join(f"{key}={_escape(value)}\n" for key, value in settings.items())


def _escape(value: str) -> str:
    # java.util.Properties treats a backslash as an escape character.
    return value.replace("\\", "\\\\")


def _log4j2_properties(log_file: Path) -> str:
    # WARN and up goes to a file in the work dir; the two INFO loggers keep the start and
    # stop milestones there too, which is what one needs when reading a failed start.
    # shutdownHook=disable: log4j's own hook would otherwise close the appender while
    # Kafka's shutdown hook is still logging, losing exactly the lines about a clean stop.
    return f"""\
status = error
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {_escape(str(log_file))}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
logger.brokerserver.name = kafka.server.BrokerServer
logger.brokerserver.level = INFO
"""


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"<{path} unreadable>"
    return "\n".join(text.splitlines()[-lines:])


def _classpath(libs: Path) -> str:
    # An explicit, sorted list rather than "libs/*": the wildcard expands in directory order,
    # and a class-data-sharing archive is only accepted for the identical classpath.
    jars = sorted(libs.glob("*.jar"))
    if not jars:
        raise KafkaBrokerError(f"no jars in {libs}; remove it and fetch again")
    return os.pathsep.join(str(jar) for jar in jars)


def _cds_archive(java: str, libs: Path, classpath: str) -> Path | None:
    """Where the broker's AppCDS archive lives, or None if CDS is switched off.

    Loading ~45 jars of Scala and Kafka classes is most of a cold broker start; a dynamic
    class-data-sharing archive (JDK 13+) taken from one earlier run cuts the JVM's time to
    "ready" roughly in half. The archive is only valid for the exact JDK build and jars, so
    its name is a digest of both; a stale one is never reused, just left for the next fetch
    to replace.
    """
    if os.environ.get("KAFKAOPS_KAFKA_CDS", "1") == "0":
        return None
    real_java = Path(os.path.realpath(java))
    stat = real_java.stat()
    stamp = libs / _STAMP
    key_source = "|".join(
        [
            str(real_java),
            str(stat.st_size),
            str(stat.st_mtime_ns),
            classpath,
            stamp.read_text() if stamp.is_file() else "",
        ]
    )
    key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
    return libs.parent / "cds" / f"broker-{key}.jsa"


def _cds_flags(archive: Path | None) -> tuple[list[str], Path | None]:
    """JVM flags that use ``archive``, or that create it at exit: (flags, pending path)."""
    if archive is None:
        return [], None
    if archive.is_file():
        return [f"-XX:SharedArchiveFile={archive}"], None
    archive.parent.mkdir(parents=True, exist_ok=True)
    # A dump whose parent was killed before the rename is garbage (~50 MB); sweep old ones.
    for stale in archive.parent.glob(".broker-*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 3600:
                stale.unlink()
    # Dumped under a private name and renamed by Broker.stop() after a clean exit, so a
    # concurrent reader never sees a half-written archive.
    pending = archive.with_name(f".{archive.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    return [f"-XX:ArchiveClassesAtExit={pending}"], pending


_libc: ctypes.CDLL | None = None
_PR_SET_PDEATHSIG = 1


def _load_libc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        name = ctypes.util.find_library("c") or "libc.so.6"
        with contextlib.suppress(OSError):
            _libc = ctypes.CDLL(name, use_errno=True)
    return _libc


def _make_preexec(parent_pid: int, libc: ctypes.CDLL | None) -> Callable[[], None]:
    def preexec() -> None:
        # Runs in the forked child before exec. atexit cannot run when the parent is
        # SIGKILLed or crashes hard; PDEATHSIG has the kernel SIGTERM the JVM then, so a
        # broker never outlives its test run. libc is loaded before the fork so this only
        # makes a syscall.
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent_pid:  # parent died before prctl took effect
                os._exit(1)

    return preexec


def _probe_metadata(host: str, port: int, timeout: float) -> bool:
    """True once the broker answers a metadata request and lists itself."""
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        return _probe_api_versions(host, port, timeout)
    admin = AdminClient(
        {
            "bootstrap.servers": f"{host}:{port}",
            "socket.connection.setup.timeout.ms": int(timeout * 1000),
            # Refused connections during startup are expected; do not spam stderr.
            "log_level": 0,
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(metadata.brokers)


def _probe_api_versions(host: str, port: int, timeout: float) -> bool:
    """Stdlib fallback: one ApiVersions v0 round trip (api key 18).

    Kafka only enables its client listener's acceptor at the very end of startup, so an
    answer here means the broker is up.
    """
    client_id = b"kafkaops-probe"
    correlation_id = 7
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _recv_exact(sock, 4)
            (size,) = struct.unpack(">i", header)
            payload = _recv_exact(sock, size)
    except OSError:
        return False
    if len(payload) < 6:
        return False
    got_correlation, error_code = struct.unpack(">ih", payload[:6])
    return bool(got_correlation == correlation_id and error_code == 0)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks.extend(chunk)
    return bytes(chunks)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Broker:
    """A running broker process; stop it with ``stop()`` or by leaving a ``with`` block."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        workdir: Path,
        port: int,
        controller_port: int,
        startup_seconds: float = 0.0,
        cds_pending: tuple[Path, Path] | None = None,
        extra_port: int = 0,
    ) -> None:
        self.process = process
        self.extra_port = extra_port
        self._cds_pending = cds_pending
        self.workdir = workdir
        self.port = port
        self.controller_port = controller_port
        self.startup_seconds = startup_seconds
        self.stdout_log = workdir / "broker.out"
        self.server_log = workdir / "server.log"
        self._lock = threading.Lock()
        atexit.register(self.stop)

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return (
            f"--- {self.server_log} (last {lines} lines) ---\n{_tail(self.server_log, lines)}\n"
            f"--- {self.stdout_log} (last {lines} lines) ---\n{_tail(self.stdout_log, lines)}"
        )

    def _signal_group(self, sig: signal.Signals) -> None:
        # The JVM leads its own process group (start_new_session), so this reaches it and
        # anything it may have spawned, and nothing else.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (Kafka's clean shutdown), then SIGKILL after ``timeout`` seconds."""
        with self._lock:
            if self.process.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    self.process.wait()
            self._settle_cds()
            atexit.unregister(self.stop)
            return self.process.returncode

    def kill(self) -> int | None:
        """SIGKILL at once, for tests that simulate a crashed broker."""
        with self._lock:
            if self.process.poll() is None:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
            self._settle_cds()
            atexit.unregister(self.stop)
            return self.process.returncode

    def _settle_cds(self) -> None:
        if self._cds_pending is None:
            return
        pending, archive = self._cds_pending
        self._cds_pending = None
        # 143 = the JVM's exit status after a SIGTERM-initiated clean shutdown; only then
        # has it finished writing the archive.
        if self.process.returncode in (0, 143) and pending.is_file() and pending.stat().st_size:
            os.replace(pending, archive)
            # Archives for an older JDK or jar set can never match again.
            for old in archive.parent.glob("broker-*.jsa"):
                if old != archive:
                    with contextlib.suppress(OSError):
                        old.unlink()
        else:
            with contextlib.suppress(FileNotFoundError):
                pending.unlink()

    def __enter__(self) -> Broker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited {self.process.returncode}"
        return f"<Broker {self.bootstrap_servers} pid={self.pid} {state} dir={self.workdir}>"


def _format_storage(java: str, classpath: str, archive: Path | None, workdir: Path, properties: Path) -> None:
    # The broker's archive covers most of what the storage tool loads too; the tool never
    # creates one itself (its class set would make a poor archive for the broker).
    share = [f"-XX:SharedArchiveFile={archive}"] if archive and archive.is_file() else []
    cmd = [
        java,
        *STORAGE_TOOL_JVM_FLAGS,
        *share,
        f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        _new_cluster_id(),
        "-c",
        str(properties),
    ]
    proc = subprocess.run(
        cmd, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise KafkaBrokerError(
            f"formatting the KRaft log dir failed (exit {proc.returncode}):\n"
            f"$ {' '.join(cmd)}\n{(proc.stdout + proc.stderr).strip()}"
        )


def _launch(
    java: str,
    libs: Path,
    workdir: Path,
    port: int,
    controller_port: int,
    deadline: float,
    hook: SettingsHook | None = None,
    extra_port: int = 0,
) -> Broker:
    data_dir = workdir / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    properties = workdir / "server.properties"
    properties.write_text(_server_properties(data_dir, port, controller_port, hook, extra_port))
    (workdir / "log4j2.properties").write_text(_log4j2_properties(workdir / "server.log"))
    classpath = _classpath(libs)
    archive = _cds_archive(java, libs, classpath)
    _format_storage(java, classpath, archive, workdir, properties)

    cds_flags, cds_pending = _cds_flags(archive)
    cmd = [
        java,
        *JVM_FLAGS,
        *cds_flags,
        f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(properties),
    ]
    libc = _load_libc()
    started = time.monotonic()
    with (workdir / "broker.out").open("ab") as out:
        process = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_make_preexec(os.getpid(), libc),
        )
    broker = Broker(
        process,
        workdir,
        port,
        controller_port,
        cds_pending=(cds_pending, archive) if cds_pending and archive else None,
        extra_port=extra_port,
    )
    try:
        while True:
            if process.poll() is not None:
                raise KafkaBrokerError(
                    f"Kafka broker exited with {process.returncode} during startup\n" + broker.log_tail()
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaBrokerError(
                    "Kafka broker did not answer a metadata request in time\n" + broker.log_tail()
                )
            # Cheap TCP check first: an admin client would only log refused connections.
            if _port_open(LOOPBACK, port) and _probe_metadata(LOOPBACK, port, min(5.0, max(remaining, 0.5))):
                broker.startup_seconds = time.monotonic() - started
                return broker
            time.sleep(0.1)
    except BaseException:
        broker.kill()
        raise


def start_broker(
    workdir: Path,
    *,
    port: int | None = None,
    version: str = DEFAULT_KAFKA_VERSION,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    settings_hook: SettingsHook | None = None,
) -> Broker:
    """Format ``workdir`` and start a single-node KRaft broker on 127.0.0.1.

    ``port`` is the client port (a free one if None); the controller port is always picked
    free. ``settings_hook(settings, extra_port)`` changes the broker's settings before they
    are written, with one more free port (``Broker.extra_port``) for a listener of its own;
    the PLAINTEXT listener on ``port`` stays, as the readiness probe's. Returns once the broker answers a metadata request; raises ``KafkaBrokerError``
    with the tail of the broker's logs if it exits or ``startup_timeout`` seconds pass.
    """
    deadline = time.monotonic() + startup_timeout
    workdir = Path(workdir).resolve()
    if "," in str(workdir):
        # log.dirs and -Dlog4j2.configurationFile are both comma-separated lists.
        raise KafkaBrokerError(f"the broker work dir must not contain a comma: {workdir}")
    workdir.mkdir(parents=True, exist_ok=True)
    libs = ensure_kafka(version)
    java = find_java()
    attempts = 1 if port is not None else 3
    last_error: KafkaBrokerError | None = None
    for _ in range(attempts):
        if port is None:
            broker_port, controller_port, extra_port = _free_loopback_ports(3)
        else:
            broker_port = port
            controller_port = extra_port = port
            while port in (controller_port, extra_port):  # the kernel may offer a port free *now*
                controller_port, extra_port = _free_loopback_ports(2)
        try:
            return _launch(
                java, libs, workdir, broker_port, controller_port, deadline, settings_hook, extra_port
            )
        except KafkaBrokerError as exc:
            # Free ports are only free until someone else binds them; retry with new ones
            # if that is what happened, fail on anything else.
            if "Address already in use" not in str(exc):
                raise
            last_error = exc
    assert last_error is not None
    raise last_error


# --------------------------------------------------------------------------- the CLI


def cds_archive_path(version: str = DEFAULT_KAFKA_VERSION) -> Path | None:
    """The class-data-sharing archive a broker of ``version`` would use (may not exist)."""
    libs = ensure_kafka(version)
    java = find_java()
    return _cds_archive(java, libs, _classpath(libs))


def warm_up(version: str = DEFAULT_KAFKA_VERSION) -> Path | None:
    """Start and stop one throwaway broker so that the CDS archive exists for later starts."""
    archive = cds_archive_path(version)
    if archive is None or archive.is_file():
        return archive
    with tempfile.TemporaryDirectory(prefix="kafka-warmup-") as tmp:
        start_broker(Path(tmp), version=version).stop()
    return archive if archive.is_file() else None


def _cmd_fetch(args: argparse.Namespace) -> int:
    libs = ensure_kafka(args.kafka_version)
    if not args.no_warm_up:
        started = time.monotonic()
        archive = warm_up(args.kafka_version)
        print(
            f"kafka-broker: class-data-sharing archive {archive} "
            f"(checked in {time.monotonic() - started:.1f}s)",
            file=sys.stderr,
        )
    print(libs)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop_requested.set()

    # Installed before the (slow) start so a Ctrl-C during startup still stops cleanly.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kafka-")))
        libs = ensure_kafka(args.kafka_version)
        print(f"kafka-broker: Kafka {args.kafka_version} from {libs}", file=sys.stderr)
        broker = start_broker(workdir, port=args.port, version=args.kafka_version)
        # Registered after the TemporaryDirectory so the broker stops before its dir goes.
        stack.callback(broker.stop)
        print(
            f"kafka-broker: pid {broker.pid}, up in {broker.startup_seconds:.1f}s, logs in {workdir}",
            file=sys.stderr,
        )
        print(f"bootstrap.servers={broker.bootstrap_servers}", flush=True)
        while not stop_requested.is_set():
            if not broker.is_running():
                print(
                    f"kafka-broker: broker exited unexpectedly ({broker.process.returncode})\n"
                    + broker.log_tail(),
                    file=sys.stderr,
                )
                return 1
            stop_requested.wait(0.5)
        print("kafka-broker: stopping", file=sys.stderr)
        code = broker.stop()
        print(f"kafka-broker: stopped (JVM exit {code})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kafka-broker", description="A local single-node Apache Kafka broker (KRaft)."
    )
    parser.add_argument(
        "--kafka-version",
        default=DEFAULT_KAFKA_VERSION,
        help=f"Kafka version from Maven Central (default {DEFAULT_KAFKA_VERSION})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch the Kafka jars into the cache, print their dir")
    fetch.add_argument(
        "--no-warm-up",
        action="store_true",
        help="only download; skip the one broker start that builds the JVM's CDS archive",
    )
    fetch.set_defaults(func=_cmd_fetch)
    run = sub.add_parser("run", help="run a broker in the foreground until SIGINT/SIGTERM")
    run.add_argument("--port", type=int, default=None, help="client port (default: a free one)")
    run.add_argument(
        "--workdir", default=None, help="data/log dir, its data/ wiped at start (default: a temp dir)"
    )
    run.set_defaults(func=_cmd_run)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KafkaBrokerError as exc:
        print(f"kafka-broker: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
