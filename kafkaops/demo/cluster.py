"""An in-process Kafka cluster with no install, and faults on demand.

Owns the ctypes binding to librdkafka's mock cluster (the copy confluent-kafka ships) and
``python -m kafkaops.demo.cluster``, which serves one on loopback until SIGINT/SIGTERM.

The mock cluster speaks the real Kafka protocol on real TCP ports on 127.0.0.1, so any
client in any process can use its ``bootstrap_servers``. It is not Apache Kafka, and these
limits were verified against the librdkafka build confluent-kafka ships:

* it does not answer CreateTopics (AdminClient.create_topics fails with
  ``_UNSUPPORTED_FEATURE``): create topics with :meth:`EmbeddedKafka.create_topic` or let a
  producer auto-create them (4 partitions);
* it does not store offsets sent with ``send_offsets_to_transaction`` (the group's committed
  offset stays unset after the transaction commits);
* it shows aborted records to ``read_committed`` consumers;
* it does not fence producers: a second ``init_transactions`` with the same
  ``transactional.id`` leaves the first producer free to commit.

So it serves fault-injection tests and a zero-install demo; exactly-once is proven on a real
broker.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import glob
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from enum import IntEnum
from types import FrameType, TracebackType
from typing import Any

from kafkaops.common.errors import KafkaopsError

__all__ = ["ApiKey", "EmbeddedKafka", "EmbeddedKafkaError", "main"]

_RD_KAFKA_PRODUCER = 0
_ALL_BROKERS = -1
_ERRSTR_SIZE = 512


class EmbeddedKafkaError(KafkaopsError):
    """The mock cluster could not be started or refused a fault-injection call."""


class ApiKey(IntEnum):
    """Kafka protocol request types, to aim injected errors at one kind of request."""

    Produce = 0
    Fetch = 1
    ListOffsets = 2
    Metadata = 3
    OffsetCommit = 8
    OffsetFetch = 9
    FindCoordinator = 10
    JoinGroup = 11
    Heartbeat = 12
    LeaveGroup = 13
    SyncGroup = 14
    DescribeGroups = 15
    ListGroups = 16
    SaslHandshake = 17
    ApiVersions = 18
    CreateTopics = 19
    DeleteTopics = 20
    DeleteRecords = 21
    InitProducerId = 22
    OffsetForLeaderEpoch = 23
    AddPartitionsToTxn = 24
    AddOffsetsToTxn = 25
    EndTxn = 26
    TxnOffsetCommit = 28
    DescribeConfigs = 32
    SaslAuthenticate = 36
    DescribeCluster = 60
    ConsumerGroupHeartbeat = 68


# (name, restype, argtypes) of every librdkafka symbol used here; see src/rdkafka_mock.h.
_VP = ctypes.c_void_p
_STR = ctypes.c_char_p
_ERR = ctypes.c_int  # rd_kafka_resp_err_t is a C enum
_SIGNATURES: tuple[tuple[str, Any, tuple[Any, ...]], ...] = (
    ("rd_kafka_version", ctypes.c_int, ()),
    ("rd_kafka_err2str", _STR, (_ERR,)),
    ("rd_kafka_conf_new", _VP, ()),
    ("rd_kafka_conf_set", ctypes.c_int, (_VP, _STR, _STR, _STR, ctypes.c_size_t)),
    ("rd_kafka_conf_destroy", None, (_VP,)),
    ("rd_kafka_new", _VP, (ctypes.c_int, _VP, _STR, ctypes.c_size_t)),
    ("rd_kafka_destroy", None, (_VP,)),
    ("rd_kafka_mock_cluster_new", _VP, (_VP, ctypes.c_int)),
    ("rd_kafka_mock_cluster_destroy", None, (_VP,)),
    ("rd_kafka_mock_cluster_bootstraps", _STR, (_VP,)),
    ("rd_kafka_mock_topic_create", _ERR, (_VP, _STR, ctypes.c_int, ctypes.c_int)),
    ("rd_kafka_mock_topic_delete", _ERR, (_VP, _STR)),
    ("rd_kafka_mock_topic_set_error", None, (_VP, _STR, _ERR)),
    ("rd_kafka_mock_broker_set_down", _ERR, (_VP, ctypes.c_int32)),
    ("rd_kafka_mock_broker_set_up", _ERR, (_VP, ctypes.c_int32)),
    ("rd_kafka_mock_broker_set_rtt", _ERR, (_VP, ctypes.c_int32, ctypes.c_int)),
    ("rd_kafka_mock_partition_set_leader", _ERR, (_VP, _STR, ctypes.c_int32, ctypes.c_int32)),
    ("rd_kafka_mock_clear_request_errors", None, (_VP, ctypes.c_int16)),
    # Variadic: (err, rtt_ms) int pairs follow; ctypes passes extra ints as C ints.
    (
        "rd_kafka_mock_broker_push_request_error_rtts",
        _ERR,
        (_VP, ctypes.c_int32, ctypes.c_int16, ctypes.c_size_t),
    ),
    (
        "rd_kafka_mock_push_request_errors_array",
        None,
        (_VP, ctypes.c_int16, ctypes.c_size_t, ctypes.POINTER(_ERR)),
    ),
)
# Newer than the oldest confluent-kafka we accept; used when present.
_OPTIONAL_SIGNATURES: tuple[tuple[str, Any, tuple[Any, ...]], ...] = (
    ("rd_kafka_mock_set_controller_id", None, (_VP, ctypes.c_int32)),
    ("rd_kafka_mock_group_initial_rebalance_delay_ms", None, (_VP, ctypes.c_int32)),
    ("rd_kafka_mock_broker_set_host_port", None, (_VP, ctypes.c_int32, _STR, ctypes.c_int)),
    # Variadic: the error codes follow as C ints.
    (
        "rd_kafka_mock_partition_push_request_errors",
        _ERR,
        (_VP, _STR, ctypes.c_int32, ctypes.c_int16, ctypes.c_size_t),
    ),
)
# Codes per variadic call: well within what any C ABI passes.
_PUSH_CHUNK = 50


def _library_path() -> str:
    """The librdkafka that confluent_kafka itself loads, found beside the package."""
    import confluent_kafka  # maps the library first, so CDLL below reuses that mapping

    package_dir = os.path.dirname(os.path.abspath(confluent_kafka.__file__))
    pattern = os.path.join(os.path.dirname(package_dir), "confluent_kafka.libs", "librdkafka*.so*")
    found = sorted(glob.glob(pattern)) or _mapped_librdkafka()
    if not found:
        raise EmbeddedKafkaError(
            "cannot find the librdkafka that confluent-kafka loads",
            hint="install the confluent-kafka wheel, which bundles librdkafka",
        )
    return found[0]


def _mapped_librdkafka() -> list[str]:
    """Fallback for a confluent-kafka built against a system librdkafka: ask the loader."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "librdkafka" in line}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


@functools.cache
def _librdkafka() -> ctypes.CDLL:
    import confluent_kafka

    lib = ctypes.CDLL(_library_path())
    try:
        for name, restype, argtypes in _SIGNATURES:
            _declare(lib, name, restype, argtypes)
    except AttributeError as exc:
        raise EmbeddedKafkaError(f"this librdkafka has no mock cluster: {exc}") from None
    for name, restype, argtypes in _OPTIONAL_SIGNATURES:
        if hasattr(lib, name):
            _declare(lib, name, restype, argtypes)
    # Two different librdkafka copies in one process would each work, but the mock would
    # then live in a library the clients do not use; refuse rather than confuse.
    if lib.rd_kafka_version() != confluent_kafka.libversion()[1]:
        raise EmbeddedKafkaError("the librdkafka found is not the one confluent-kafka uses")
    return lib


def _declare(lib: ctypes.CDLL, name: str, restype: Any, argtypes: tuple[Any, ...]) -> None:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = list(argtypes)


def _error_text(lib: ctypes.CDLL, code: int) -> str:
    text: bytes | None = lib.rd_kafka_err2str(code)
    return text.decode("utf-8", "replace") if text else f"error {code}"


class EmbeddedKafka:
    """A librdkafka mock Kafka cluster listening on 127.0.0.1; see the module docstring.

    ``EmbeddedKafka(brokers=3, topics={"orders": 6})`` starts it at once; use it as a
    context manager or call :meth:`close`. Broker ids run from 1 to ``brokers``; -1 means
    every broker. Error codes are plain ints, e.g. ``confluent_kafka.KafkaError.*``. Broker 1
    is reported as the controller, and a new consumer group rebalances without Kafka's
    usual 3 s delay unless ``group_initial_rebalance_delay_ms`` asks for one.
    """

    def __init__(
        self,
        brokers: int = 1,
        topics: Mapping[str, int] | None = None,
        *,
        group_initial_rebalance_delay_ms: int = 0,
        port: int | None = None,
    ) -> None:
        if brokers < 1:
            raise EmbeddedKafkaError(f"brokers must be at least 1, not {brokers}")
        self.brokers = brokers
        self._forwarders: list[_PortForwarder] = []
        self._lib = _librdkafka()
        self._rk = self._new_handle()
        self._cluster: int | None = self._lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._cluster:
            self._lib.rd_kafka_destroy(self._rk)
            raise EmbeddedKafkaError("librdkafka could not start a mock cluster")
        self.bootstrap_servers: str = self._lib.rd_kafka_mock_cluster_bootstraps(self._cluster).decode()
        # Without this the mock reports controller 0, which is no broker, so admin
        # requests wait for a controller until they time out instead of failing at once.
        if hasattr(self._lib, "rd_kafka_mock_set_controller_id"):
            self._lib.rd_kafka_mock_set_controller_id(self._cluster, 1)
        # Kafka's default of 3 s before a new group's first rebalance only slows tests down.
        if hasattr(self._lib, "rd_kafka_mock_group_initial_rebalance_delay_ms"):
            self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(
                self._cluster, group_initial_rebalance_delay_ms
            )
        try:
            if port is not None:
                self._listen_on(port)
            for name, partitions in (topics or {}).items():
                self.create_topic(name, partitions)
        except BaseException:
            self.close()
            raise

    def _listen_on(self, port: int) -> None:
        """Serve broker N on 127.0.0.1:(port + N - 1). The mock binds ports of its own choosing
        and cannot be told which, so each chosen port relays to its broker, and the broker
        advertises the chosen port in metadata: clients only ever use the chosen ports."""
        if not hasattr(self._lib, "rd_kafka_mock_broker_set_host_port"):
            raise EmbeddedKafkaError("this librdkafka cannot advertise a chosen port (needs 2.2 or newer)")
        actual = self.bootstrap_servers.split(",")
        for broker_id, address in enumerate(actual, start=1):
            chosen = port + broker_id - 1
            host, _, real_port = address.rpartition(":")
            try:
                forwarder = _PortForwarder(chosen, (host, int(real_port)))
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                raise EmbeddedKafkaError(f"cannot listen on 127.0.0.1:{chosen}: {reason}") from None
            self._forwarders.append(forwarder)
            self._lib.rd_kafka_mock_broker_set_host_port(self._cluster, broker_id, b"127.0.0.1", chosen)
        self.bootstrap_servers = ",".join(f"127.0.0.1:{f.port}" for f in self._forwarders)

    def _new_handle(self) -> int:
        """The rd_kafka_t the mock cluster needs for bookkeeping; it never talks to Kafka."""
        lib = self._lib
        conf = lib.rd_kafka_conf_new()
        errstr = ctypes.create_string_buffer(_ERRSTR_SIZE)
        # The handle has no bootstrap servers and nobody reads its logs: keep it silent.
        for key, value in (("log_level", "0"), ("client.id", "kafkaops-embedded")):
            if lib.rd_kafka_conf_set(conf, key.encode(), value.encode(), errstr, _ERRSTR_SIZE):
                lib.rd_kafka_conf_destroy(conf)
                raise EmbeddedKafkaError(f"librdkafka rejected {key}: {errstr.value.decode()}")
        handle: int | None = lib.rd_kafka_new(_RD_KAFKA_PRODUCER, conf, errstr, _ERRSTR_SIZE)
        if not handle:  # rd_kafka_new only takes ownership of conf on success
            lib.rd_kafka_conf_destroy(conf)
            raise EmbeddedKafkaError(f"librdkafka handle: {errstr.value.decode()}")
        return handle

    def __enter__(self) -> EmbeddedKafka:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._cluster is None else self.bootstrap_servers
        return f"EmbeddedKafka(brokers={self.brokers}, {state})"

    @property
    def closed(self) -> bool:
        return self._cluster is None

    def _mcluster(self) -> int:
        if self._cluster is None:
            raise EmbeddedKafkaError("the embedded Kafka cluster is closed")
        return self._cluster

    def _check(self, code: int, action: str) -> None:
        if code:
            raise EmbeddedKafkaError(f"embedded Kafka: {action}: {_error_text(self._lib, code)}")

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 1) -> None:
        """Create a topic directly in the mock (it does not answer CreateTopics requests)."""
        # The mock accepts any counts; refuse what a real cluster would refuse.
        if partitions < 1 or not 1 <= replication_factor <= self.brokers:
            raise EmbeddedKafkaError(
                f"embedded Kafka: create topic {name!r}: need partitions >= 1 and a replication "
                f"factor from 1 to {self.brokers}, not {partitions} and {replication_factor}"
            )
        code = self._lib.rd_kafka_mock_topic_create(
            self._mcluster(), name.encode(), partitions, replication_factor
        )
        self._check(code, f"create topic {name!r}")

    def delete_topic(self, name: str) -> None:
        """Delete a topic, its records and the errors pushed for its partitions."""
        self._check(self._lib.rd_kafka_mock_topic_delete(self._mcluster(), name.encode()), f"delete {name!r}")

    def broker_down(self, broker_id: int = _ALL_BROKERS) -> None:
        """Drop the broker's connections and refuse new ones (no leader change)."""
        code = self._lib.rd_kafka_mock_broker_set_down(self._mcluster(), broker_id)
        self._check(code, f"broker {broker_id} down")

    def broker_up(self, broker_id: int = _ALL_BROKERS) -> None:
        """Accept connections again."""
        code = self._lib.rd_kafka_mock_broker_set_up(self._mcluster(), broker_id)
        self._check(code, f"broker {broker_id} up")

    def set_rtt(self, broker_id: int, ms: int) -> None:
        """Delay every response from the broker (-1: all brokers) by ``ms`` milliseconds.

        Every response includes the handshake: the mock answers ApiVersions in two round
        trips (the client falls back from v3 to v0), so a client connects only if its
        ``socket.connection.setup.timeout.ms`` exceeds twice ``ms``. To slow only, say,
        Produce acks, use :meth:`push_broker_request_errors` with error 0.
        """
        code = self._lib.rd_kafka_mock_broker_set_rtt(self._mcluster(), broker_id, ms)
        self._check(code, f"set rtt of broker {broker_id}")

    def topic_error(self, topic: str, error_code: int) -> None:
        """Report ``error_code`` for the topic in Metadata (and AddPartitionsToTxn); 0 clears.

        A producer that then looks the topic up fails its messages with that error.
        """
        self._lib.rd_kafka_mock_topic_set_error(self._mcluster(), topic.encode(), error_code)

    def refuse_produce(self, topic: str, error_code: int, *, partitions: int = 1, times: int = 1000) -> None:
        """Answer the next ``times`` Produce requests for each of the topic's first
        ``partitions`` partitions with ``error_code``, as a broker refusing those records would
        (MSG_SIZE_TOO_LARGE for a topic with a small max.message.bytes); other topics in the
        same requests are written. :meth:`delete_topic` forgets what is left."""
        if not hasattr(self._lib, "rd_kafka_mock_partition_push_request_errors"):
            raise EmbeddedKafkaError(
                "this librdkafka's mock cluster cannot fail one partition's produce requests",
                hint="upgrade confluent-kafka",
            )
        for partition in range(partitions):
            left = times
            while left > 0:
                count = min(left, _PUSH_CHUNK)
                code = self._lib.rd_kafka_mock_partition_push_request_errors(
                    self._mcluster(),
                    topic.encode(),
                    partition,
                    int(ApiKey.Produce),
                    count,
                    *[error_code] * count,
                )
                self._check(code, f"refuse produce requests for {topic}[{partition}]")
                left -= count

    def push_request_errors(self, api_key: int, *error_codes: int) -> None:
        """Fail the next ``len(error_codes)`` requests of ``api_key``, one code each, in order.

        ``confluent_kafka.KafkaError._TRANSPORT`` makes the broker drop the connection.
        """
        errors = (_ERR * len(error_codes))(*error_codes)
        self._lib.rd_kafka_mock_push_request_errors_array(
            self._mcluster(), int(api_key), len(error_codes), errors
        )

    def push_broker_request_errors(self, broker_id: int, api_key: int, *entries: tuple[int, int]) -> None:
        """Answer the broker's next ``api_key`` requests with ``(error_code, rtt_ms)`` each.

        Error 0 with a delay slows just those responses, e.g. slow Produce acks, where
        :meth:`set_rtt` would slow every response, the connection handshake included.
        These take precedence over :meth:`push_request_errors`.
        """
        flat = [int(value) for entry in entries for value in entry]
        code = self._lib.rd_kafka_mock_broker_push_request_error_rtts(
            self._mcluster(), broker_id, int(api_key), len(entries), *flat
        )
        self._check(code, f"push request errors on broker {broker_id}")

    def clear_request_errors(self, api_key: int) -> None:
        """Forget the errors still pushed for ``api_key``."""
        self._lib.rd_kafka_mock_clear_request_errors(self._mcluster(), int(api_key))

    def partition_set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        """Move a partition's leadership (-1: leaderless); creates the topic if missing."""
        code = self._lib.rd_kafka_mock_partition_set_leader(
            self._mcluster(), topic.encode(), partition, broker_id
        )
        self._check(code, f"set leader of {topic}[{partition}]")

    def close(self) -> None:
        """Stop the brokers (clients see them go away) and free the handle; idempotent."""
        for forwarder in self._forwarders:
            forwarder.close()
        self._forwarders.clear()
        if self._cluster is None:
            return
        cluster, self._cluster = self._cluster, None
        self._lib.rd_kafka_mock_cluster_destroy(cluster)
        self._lib.rd_kafka_destroy(self._rk)


def _topic_spec(text: str) -> tuple[str, int]:
    name, sep, count = text.rpartition(":")
    if not sep:
        return text, 1
    if not name or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME[:PARTITIONS], got {text!r}")
    return name, int(count)


class _PortForwarder:
    """Accepts connections on 127.0.0.1:port and relays each one, both ways, to `target`."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self._server = socket.create_server(("127.0.0.1", port))
        self.port: int = self._server.getsockname()[1]
        self._target = target
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, name=f"embedded-port-{port}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):  # the other side may have gone first
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._server.close()
        with self._lock:
            for sock in self._open:
                sock.close()
            self._open.clear()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kafkaops.demo.cluster",
        description="Serve a librdkafka mock Kafka cluster on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--brokers", type=int, default=1, help="number of brokers (default 1)")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="listen on this port (broker N on PORT+N-1) instead of ports the system picks",
    )
    parser.add_argument(
        "--topic",
        dest="topics",
        action="append",
        type=_topic_spec,
        default=[],
        metavar="NAME[:PARTITIONS]",
        help="create a topic up front (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a cluster, print ``bootstrap.servers=...`` and wait for SIGINT or SIGTERM."""
    args = _parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Install before starting, so a signal that arrives early still ends cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    try:
        cluster = EmbeddedKafka(brokers=args.brokers, topics=dict(args.topics), port=args.port)
    except KafkaopsError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    with cluster:
        print(f"bootstrap.servers={cluster.bootstrap_servers}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
