"""pytest plugin owning the secure Apache Kafka broker: SASL_SSL, a test CA, and ACLs.

The same jars and KRaft combined-mode broker as ``broker_fixtures`` (scripts/kafka_broker.py),
plus a client listener on ``SASL_SSL`` (PLAIN and SCRAM-SHA-512), TLS from a CA made at set-up
with ``keytool`` (it ships with the JDK the broker needs; nothing is downloaded), Kafka's
``StandardAuthorizer`` and ``allow.everyone.if.no.acl.found=false``. ``User:admin`` (PLAIN) is
a super user; so is ``User:ANONYMOUS``, the principal of the PLAINTEXT controller and
inter-broker listeners, which are the broker's own and never given to kafkaops.

* ``secure_broker`` (session): the running broker, a ``SecureBroker``; one per session.
* ``kafka_user`` (function): ``kafka_user(name=None) -> KafkaUser``, a fresh SCRAM-SHA-512
  user with no ACL; its ACLs and credential are removed at teardown.
* ``secure_topic`` (function): ``secure_topic(partitions=1, *, name_prefix="t") -> str``, a
  fresh topic created by the admin.

Tests that use them carry ``@pytest.mark.kafka``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.broker_fixtures import SKIP_PREFIX, _wait_for_topic, kafka_broker

ADMIN_USER = "admin"
# PLAIN users are fixed in the broker's JAAS configuration; SCRAM users are made per test.
PLAIN_USER = "plain-user"
_STORE_PASSWORD = "kafkaops-test-store"
_KEYTOOL_JVM = ("-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-J-Xshare:auto")
_PROPAGATION_SECONDS = 30.0


@dataclass(frozen=True)
class KafkaUser:
    """A principal kafkaops can log in as: ``kafka`` is its librdkafka properties."""

    name: str
    password: str
    mechanism: str
    kafka: dict[str, str]

    @property
    def principal(self) -> str:
        return f"User:{self.name}"


@dataclass(frozen=True)
class Grant:
    """One ACL: ``operation`` on ``resource_type`` (topic, group, transactional_id, cluster)
    ``name``, LITERAL or PREFIXED."""

    resource_type: str
    name: str
    operation: str
    pattern: str = "LITERAL"


def _keytool() -> str:
    java = Path(os.path.realpath(kafka_broker.find_java()))
    candidate = java.parent / "keytool"
    if os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("keytool")
    if not found:
        raise kafka_broker.KafkaToolMissingError("`keytool` not found beside `java`")
    return found


def make_test_ca(workdir: Path) -> tuple[Path, Path]:
    """A CA and a broker certificate it signed (for ``localhost`` and ``127.0.0.1``):
    (the broker's PKCS12 key store, the CA certificate in PEM for clients)."""
    keytool = _keytool()
    workdir.mkdir(parents=True, exist_ok=True)
    ca_store, broker_store = workdir / "ca.p12", workdir / "broker.p12"
    ca_pem, csr, broker_pem = workdir / "ca.pem", workdir / "broker.csr", workdir / "broker.pem"
    common = ["-storetype", "PKCS12", "-storepass", _STORE_PASSWORD, "-keypass", _STORE_PASSWORD]
    ec = ["-keyalg", "EC", "-groupname", "secp256r1", "-validity", "3"]
    steps = [
        ["-genkeypair", "-alias", "ca", *ec, "-dname", "CN=kafkaops test CA", "-ext", "bc:c",
         "-keystore", ca_store, *common],
        ["-exportcert", "-rfc", "-alias", "ca", "-keystore", ca_store, "-file", ca_pem, *common],
        ["-genkeypair", "-alias", "broker", *ec, "-dname", "CN=localhost",
         "-keystore", broker_store, *common],
        ["-certreq", "-alias", "broker", "-keystore", broker_store, "-file", csr, *common],
        ["-gencert", "-rfc", "-alias", "ca", "-keystore", ca_store, "-infile", csr,
         "-outfile", broker_pem, "-validity", "3", "-ext", "SAN=dns:localhost,ip:127.0.0.1",
         "-ext", "EKU=serverAuth", *common],
        ["-importcert", "-noprompt", "-alias", "ca", "-file", ca_pem, "-keystore", broker_store,
         *common],
        ["-importcert", "-alias", "broker", "-file", broker_pem, "-keystore", broker_store,
         *common],
    ]  # fmt: skip
    for step in steps:
        cmd = [keytool, *_KEYTOOL_JVM, *(str(part) for part in step)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise kafka_broker.KafkaBrokerError(
                f"keytool failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
            )
    return broker_store, ca_pem


def _jaas_plain(users: dict[str, str]) -> str:
    entries = " ".join(f'user_{name}="{password}"' for name, password in users.items())
    admin = users[ADMIN_USER]
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{ADMIN_USER}" password="{admin}" {entries};'
    )


def secure_settings_hook(
    keystore: Path, plain_users: dict[str, str]
) -> Callable[[dict[str, str], int], None]:
    """The broker settings that add the SASL_SSL listener on the extra port and the ACLs."""

    def hook(settings: dict[str, str], port: int) -> None:
        loopback = kafka_broker.LOOPBACK
        settings["listeners"] += f",SASL_SSL://{loopback}:{port}"
        settings["advertised.listeners"] += f",SASL_SSL://{loopback}:{port}"
        settings["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
        settings.update(
            {
                "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
                "listener.name.sasl_ssl.plain.sasl.jaas.config": _jaas_plain(plain_users),
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
                "ssl.keystore.type": "PKCS12",
                "ssl.keystore.location": str(keystore),
                "ssl.keystore.password": _STORE_PASSWORD,
                "ssl.key.password": _STORE_PASSWORD,
                "ssl.client.auth": "none",
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found": "false",
                "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
            }
        )

    return hook


@dataclass
class SecureBroker:
    """The running secure broker, its admin and the users and ACLs tests make on it."""

    broker: Any
    ca_location: Path
    plain_passwords: dict[str, str]
    _admin: Any = field(default=None, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"{kafka_broker.LOOPBACK}:{self.broker.extra_port}"

    def client_config(self, name: str, password: str, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """librdkafka properties that log in as ``name`` over SASL_SSL, trusting the test CA."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(self.ca_location),
            "sasl.mechanism": mechanism,
            "sasl.username": name,
            "sasl.password": password,
        }

    @property
    def admin_config(self) -> dict[str, str]:
        return self.client_config(ADMIN_USER, self.plain_passwords[ADMIN_USER], "PLAIN")

    def plain_user(self) -> KafkaUser:
        """The PLAIN user of the broker's JAAS configuration (no ACL unless a test grants)."""
        password = self.plain_passwords[PLAIN_USER]
        return KafkaUser(PLAIN_USER, password, "PLAIN", self.client_config(PLAIN_USER, password, "PLAIN"))

    def admin(self) -> Any:
        """An AdminClient logged in as the super user."""
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient(self.admin_config)
        return self._admin

    # ------------------------------------------------------------------ users

    def create_scram_user(self, name: str | None = None, password: str | None = None) -> KafkaUser:
        """A SCRAM-SHA-512 user, returned once the broker accepts its login."""
        from confluent_kafka.admin import (
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        name = name or f"u-{uuid.uuid4().hex[:10]}"
        password = password or secrets.token_urlsafe(12)
        upsertion = UserScramCredentialUpsertion(
            name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), password.encode()
        )
        for future in self.admin().alter_user_scram_credentials([upsertion]).values():
            future.result(timeout=30)
        user = KafkaUser(name, password, "SCRAM-SHA-512", self.client_config(name, password))
        self._wait_for_login(user)
        return user

    def delete_scram_user(self, name: str) -> None:
        from confluent_kafka.admin import ScramMechanism, UserScramCredentialDeletion

        deletion = UserScramCredentialDeletion(name, ScramMechanism.SCRAM_SHA_512)
        for future in self.admin().alter_user_scram_credentials([deletion]).values():
            future.result(timeout=30)

    def _wait_for_login(self, user: KafkaUser) -> None:
        # The credential reaches the broker through the metadata log a moment after the
        # controller accepted it; a metadata request that succeeds proves the login.
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + _PROPAGATION_SECONDS
        while True:
            client = AdminClient({**user.kafka, "log_level": 0})
            try:
                client.list_topics(timeout=2)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # ------------------------------------------------------------------ ACLs

    def _binding(self, principal: str, grant: Grant) -> Any:
        from confluent_kafka.admin import (
            AclBinding,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        resource_type = ResourceType[grant.resource_type.upper()]
        name = "kafka-cluster" if resource_type == ResourceType.BROKER else grant.name
        return AclBinding(
            resource_type,
            name,
            ResourcePatternType[grant.pattern.upper()],
            principal,
            "*",
            AclOperation[grant.operation.upper()],
            AclPermissionType.ALLOW,
        )

    def _filter(self, principal: str) -> Any:
        from confluent_kafka.admin import (
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        return AclBindingFilter(
            ResourceType.ANY,
            None,
            ResourcePatternType.ANY,
            principal,
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )

    def acls(self, principal: str) -> set[Grant]:
        """The ALLOW ACLs the broker holds for ``principal``."""
        result = self.admin().describe_acls(self._filter(principal), request_timeout=30).result(timeout=30)
        return {
            Grant(b.restype.name.lower(), b.name, b.operation.name.lower(), b.resource_pattern_type.name)
            for b in result
        }

    def grant(self, user: KafkaUser | str, *grants: Grant) -> None:
        """Allow each of ``grants`` to ``user``; returns once the broker enforces them."""
        principal = user if isinstance(user, str) else user.principal
        if not grants:
            return
        bindings = [self._binding(principal, g) for g in grants]
        for future in self.admin().create_acls(bindings, request_timeout=30).values():
            future.result(timeout=30)
        self._wait_for(principal, lambda held: all(self._norm(g) in held for g in grants))

    def revoke(self, user: KafkaUser | str, *grants: Grant) -> None:
        """Remove each of ``grants`` from ``user``; returns once the broker enforces it."""
        from confluent_kafka.admin import AclBindingFilter

        principal = user if isinstance(user, str) else user.principal
        if not grants:
            return
        filters = []
        for g in grants:
            b = self._binding(principal, g)
            filters.append(
                AclBindingFilter(
                    b.restype,
                    b.name,
                    b.resource_pattern_type,
                    b.principal,
                    b.host,
                    b.operation,
                    b.permission_type,
                )
            )
        for future in self.admin().delete_acls(filters, request_timeout=30).values():
            future.result(timeout=30)
        self._wait_for(principal, lambda held: not any(self._norm(g) in held for g in grants))

    def revoke_all(self, user: KafkaUser | str) -> None:
        principal = user if isinstance(user, str) else user.principal
        for future in self.admin().delete_acls([self._filter(principal)], request_timeout=30).values():
            future.result(timeout=30)
        self._wait_for(principal, lambda held: not held)

    @staticmethod
    def _norm(grant: Grant) -> Grant:
        name = "kafka-cluster" if grant.resource_type.lower() in ("cluster", "broker") else grant.name
        kind = "broker" if grant.resource_type.lower() == "cluster" else grant.resource_type.lower()
        return Grant(kind, name, grant.operation.lower(), grant.pattern.upper())

    def _wait_for(self, principal: str, done: Callable[[set[Grant]], bool]) -> None:
        # DescribeAcls is answered from the broker's own authorizer, so once it shows the
        # change the broker enforces it.
        deadline = time.monotonic() + _PROPAGATION_SECONDS
        while not done(self.acls(principal)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"ACLs of {principal} did not reach the broker in time")
            time.sleep(0.05)

    # ------------------------------------------------------------------ topics

    def create_topic(self, partitions: int = 1, *, name_prefix: str = "t", name: str | None = None) -> str:
        from confluent_kafka.admin import NewTopic

        name = name or f"{name_prefix}-{uuid.uuid4().hex[:12]}"
        futures = self.admin().create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=-1)],
            operation_timeout=30,
            request_timeout=30,
        )
        futures[name].result(timeout=30)
        _wait_for_topic(self.admin(), name, partitions, time.monotonic() + 30)
        return name

    def delete_topics(self, names: list[str]) -> None:
        for future in self.admin().delete_topics(names, operation_timeout=10).values():
            with contextlib.suppress(Exception):
                future.result(timeout=15)


def start_secure_broker(workdir: Path) -> SecureBroker:
    """Make the CA and start the broker in ``workdir``; the caller stops ``.broker``."""
    keystore, ca_pem = make_test_ca(workdir / "tls")
    plain = {ADMIN_USER: secrets.token_urlsafe(12), PLAIN_USER: secrets.token_urlsafe(12)}
    broker = kafka_broker.start_broker(
        workdir / "broker", settings_hook=secure_settings_hook(keystore, plain)
    )
    return SecureBroker(broker, ca_pem, plain)


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """The secure broker shared by the whole session (started on first use)."""
    try:
        kafka_broker.ensure_kafka()
        _keytool()
    except kafka_broker.KafkaToolMissingError as exc:
        pytest.skip(f"{SKIP_PREFIX}: {exc}")
    started = start_secure_broker(tmp_path_factory.mktemp("secure-kafka"))
    started.admin()  # made here, it is the session's client, not the first test's
    try:
        yield started
    finally:
        started._admin = None  # its connections closed before the broker goes
        started.broker.stop()


@pytest.fixture
def kafka_user(secure_broker: SecureBroker) -> Iterator[Callable[..., KafkaUser]]:
    """``kafka_user(name=None) -> KafkaUser``: a fresh SCRAM user without ACLs."""
    made: list[KafkaUser] = []

    def factory(name: str | None = None) -> KafkaUser:
        user = secure_broker.create_scram_user(name)
        made.append(user)
        return user

    yield factory
    for user in made:
        with contextlib.suppress(Exception):
            secure_broker.revoke_all(user)
        with contextlib.suppress(Exception):
            secure_broker.delete_scram_user(user.name)


@pytest.fixture
def secure_topic(secure_broker: SecureBroker) -> Iterator[Callable[..., str]]:
    """``secure_topic(partitions=1, *, name_prefix="t", name=None) -> str``: a fresh topic."""
    created: list[str] = []

    def factory(partitions: int = 1, *, name_prefix: str = "t", name: str | None = None) -> str:
        topic = secure_broker.create_topic(partitions, name_prefix=name_prefix, name=name)
        created.append(topic)
        return topic

    yield factory
    if created:
        secure_broker.delete_topics(created)
