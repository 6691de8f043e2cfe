"""Real parts for every test: moto's S3 server over HTTP, SQLite files, PostgreSQL and MariaDB over TCP."""

from __future__ import annotations

import itertools
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.backends import BACKENDS
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from costalloc_pipeline.config import Settings
from costalloc_pipeline.db import dispose_engine
from costalloc_pipeline.embedded import free_port, start_moto
from costalloc_pipeline.schema.migrate import upgrade_all

POSTGRES_ADMIN_URL = os.environ.get(
    "COSTALLOC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get("COSTALLOC_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")

_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_counter = itertools.count()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    # Small multipart parts let tests exercise UploadPartCopy with small objects.
    process = start_moto(port, log_path=log, extra_env={"S3_UPLOAD_PART_MIN_SIZE": "256"})
    yield f"http://127.0.0.1:{port}"
    process.kill()
    process.wait()


@pytest.fixture
def s3_endpoint(moto_endpoint: str) -> str:
    """The shared moto server, emptied before each test."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).close()
    return moto_endpoint


def _admin(url: str, server: str):
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        engine.connect().close()
    except Exception as error:  # noqa: BLE001 - any failure to reach it is a test failure
        pytest.fail(f"{server} is required for these tests and is unreachable at {url}: {error}")
    return engine


def _postgres_admin():
    return _admin(POSTGRES_ADMIN_URL, "PostgreSQL")


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per session; each test copies it (CREATE DATABASE ... TEMPLATE)."""
    admin = _postgres_admin()
    name = f"costalloc_tmpl_{_worker}_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade_all(url, url)
    dispose_engine(url)
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "db.sqlite"
    upgrade_all(f"sqlite:///{path}", f"sqlite:///{path}")
    dispose_engine(f"sqlite:///{path}")
    return path


def _postgres_database(template: str | None) -> Iterator[str]:
    admin = _postgres_admin()
    name = f"costalloc_t_{_worker}_{os.getpid()}_{next(_counter)}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    dispose_engine(url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _mariadb_admin():
    return _admin(MARIADB_ADMIN_URL, "MariaDB")


def _mariadb_url(name: str) -> str:
    return make_url(MARIADB_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def mariadb_template() -> Iterator[str]:
    """A database migrated once per session; each test copies its tables (MySQL has no template
    databases), as SHOW CREATE TABLE gives them: columns, collations, indexes and foreign keys."""
    admin = _mariadb_admin()
    name = f"costalloc_tmpl_{_worker}_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    url = _mariadb_url(name)
    upgrade_all(url, url)
    dispose_engine(url)
    yield name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


def _mariadb_database(template: str | None) -> Iterator[str]:
    admin = _mariadb_admin()
    name = f"costalloc_t_{_worker}_{os.getpid()}_{next(_counter)}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}`"))
        tables = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"), {"schema": template}
        ).scalars()
        # Not CREATE TABLE ... LIKE, which leaves the foreign keys out: the tests would run without
        # the locks an association's foreign key takes on its cost allocation (a retire racing an
        # assign found its row gone only on MariaDB).
        definitions = {
            table: conn.execute(text(f"SHOW CREATE TABLE `{template}`.`{table}`")).one()[1]
            for table in (list(tables) if template else [])
        }
    url = _mariadb_url(name)
    if definitions:
        copier = create_engine(url)
        with copier.begin() as conn:
            # The tables come in no order: a foreign key may name one that is not made yet.
            conn.execute(text("SET foreign_key_checks = 0"))
            for table, definition in definitions.items():
                conn.exec_driver_sql(definition)
                if table.startswith("alembic_version"):
                    conn.execute(text(f"INSERT INTO `{table}` SELECT * FROM `{template}`.`{table}`"))
        copier.dispose()
    yield url
    dispose_engine(url)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@pytest.fixture
def empty_mariadb_url() -> Iterator[str]:
    """A new MariaDB database with no schema at all."""
    yield from _mariadb_database(None)


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new PostgreSQL database with no schema at all (for Dagster's own storage, say)."""
    yield from _postgres_database(None)


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    """A migrated, empty database holding both the repository and the replica schema."""
    if request.param == "sqlite":
        path = tmp_path / "db.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        yield url
        dispose_engine(url)
    elif request.param == "mariadb":
        yield from _mariadb_database(request.getfixturevalue("mariadb_template"))
    else:
        yield from _postgres_database(request.getfixturevalue("postgres_template"))


@pytest.fixture
def settings(database_url: str, s3_endpoint: str, tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        repository_url=database_url,
        replica_url=database_url,
        s3_endpoint_url=s3_endpoint,
        stack="test",
        # Sources are archived right after their repoint unless a test is about the grace period.
        archive_grace_seconds=0,
    )


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The COSTALLOC_* environment of the test's settings: a command reads its configuration from
    there, as it does in production."""
    for name, value in settings.environment().items():
        monkeypatch.setenv(name, value)
    # A namespace set where the tests run would publish to CloudWatch: only tests that want it set it.
    monkeypatch.delenv("COSTALLOC_CLOUDWATCH_NAMESPACE", raising=False)
    return settings


# --- service fixtures ---

import json  # noqa: E402 - this section's own imports
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import boto3  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from costalloc_pipeline.api import create_app  # noqa: E402
from costalloc_pipeline.bootstrap import bootstrap  # noqa: E402
from costalloc_pipeline.db import engine_for, new_etag, utcnow  # noqa: E402
from costalloc_pipeline.s3 import client_config, local_credentials  # noqa: E402
from costalloc_pipeline.schema.repository import NodeType, node  # noqa: E402


class Entities:
    """Projects, folders and files written straight into `node` (the seed command is not needed)."""

    def __init__(self, repository_url: str) -> None:
        self.repository_url = repository_url

    def _add(self, entity_id: int, node_type: NodeType, parent_id: int | None, project_id: int | None) -> int:
        now = utcnow()
        with engine_for(self.repository_url).begin() as conn:
            conn.execute(
                node.insert().values(
                    id=entity_id,
                    name=f"{node_type.value.lower()} {entity_id}",
                    node_type=node_type.value,
                    parent_id=parent_id,
                    project_id=project_id,
                    etag=new_etag(),
                    created_on=now,
                    created_by=1,
                    modified_on=now,
                )
            )
        return entity_id

    def project(self, entity_id: int) -> int:
        return self._add(entity_id, NodeType.PROJECT, None, entity_id)

    def folder(self, entity_id: int, parent_id: int, project_id: int) -> int:
        return self._add(entity_id, NodeType.FOLDER, parent_id, project_id)

    def file(self, entity_id: int, parent_id: int, project_id: int) -> int:
        return self._add(entity_id, NodeType.FILE, parent_id, project_id)


@pytest.fixture
def entities(settings: Settings) -> Entities:
    return Entities(settings.repository_url)


@pytest.fixture
def admin_token(settings: Settings) -> str:
    """A bootstrapped stack (default bucket included); the administrator's token."""
    token = bootstrap(settings).admin_token
    assert token is not None
    return token


@pytest.fixture
def api(settings: Settings, admin_token: str) -> Iterator[TestClient]:
    """The REST API in process, called as the administrator. Unexpected errors come back as the
    500 a client would see instead of being raised into the test."""
    with TestClient(
        create_app(settings), raise_server_exceptions=False, headers={"Authorization": f"Bearer {admin_token}"}
    ) as client:
        yield client


def _moto_auth(endpoint: str, free_actions: str) -> None:
    # moto checks IAM policies once its count of unauthenticated actions is used up ("inf": never).
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=free_actions.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request, timeout=30).close()


@pytest.fixture
def s3_denied_lifecycle(s3_endpoint: str) -> Iterator[Any]:
    """An S3 client of an IAM user that may create, configure and delete buckets but not set their
    lifecycle, with moto enforcing IAM: provisioning fails after CreateBucket, for real."""
    iam = boto3.client("iam", endpoint_url=s3_endpoint, region_name="us-east-1", **local_credentials(s3_endpoint))
    iam.create_user(UserName="provisioner")
    allowed = [
        "s3:CreateBucket",
        "s3:DeleteBucket",
        "s3:ListAllMyBuckets",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketTagging",
        "s3:PutBucketVersioning",
    ]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": allowed, "Resource": "*"}]}
    iam.put_user_policy(UserName="provisioner", PolicyName="no-lifecycle", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="provisioner")["AccessKey"]
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=client_config(),
    )
    _moto_auth(s3_endpoint, "0")
    try:
        yield client
    finally:
        _moto_auth(s3_endpoint, "inf")


@pytest.fixture
def bucket_of_another_account(s3_endpoint: str) -> Callable[[str], None]:
    """Creates a bucket as another AWS account (moto's account header): that name is taken for us."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **local_credentials(s3_endpoint))
    client.meta.events.register(
        "before-sign.s3.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", "111111111111")
    )

    def create(bucket: str) -> None:
        client.create_bucket(Bucket=bucket)

    return create


# --- pipeline fixtures ---

from costalloc_pipeline import allocations  # noqa: E402
from costalloc_pipeline.auth import admin_caller as _admin_caller  # noqa: E402
from costalloc_pipeline.seed import SeedReport, SeedSpec, seed_repository  # noqa: E402


class Stack:
    """A seeded repository, a Dagster test instance and the sensor/run loop of the local runner."""

    def __init__(self, settings: Settings, report: SeedReport, runner) -> None:
        self.settings = settings
        self.report = report
        self.runner = runner
        self.repository = engine_for(settings.repository_url)
        self.s3 = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name="us-east-1",
            config=client_config(),
            **local_credentials(settings.s3_endpoint_url),
        )

    def on_instance(self, instance) -> Stack:
        """The same repository driven through another Dagster instance."""
        from costalloc_pipeline.defs.local_runner import LocalRunner

        return Stack(self.settings, self.report, LocalRunner(self.settings, instance))

    def caller(self):
        with self.repository.connect() as conn:
            return _admin_caller(conn)

    def assign(self, project_id: int, name: str) -> None:
        allocations.assign(self.repository, self.s3, self.settings, project_id, name, self.caller())

    def unassign(self, project_id: int) -> None:
        allocations.unassign(self.repository, project_id, self.caller())


SMALL_REPOSITORY = SeedSpec(projects=3, folders_per_project=2, files_per_folder=6, versions_per_file=2, max_size=2048)


@pytest.fixture
def stack(settings: Settings) -> Iterator[Stack]:
    import dagster as dg

    from costalloc_pipeline.defs.local_runner import LocalRunner

    report = seed_repository(settings, SMALL_REPOSITORY)
    with dg.instance_for_test() as instance:
        yield Stack(settings, report, LocalRunner(settings, instance))


@pytest.fixture
def small_bundle_stack(settings: Settings) -> Iterator[Stack]:
    """The stack with bundles of at most 4 files: a project's run takes several bundles."""
    import dagster as dg

    from costalloc_pipeline.defs.local_runner import LocalRunner

    small = settings.with_changes(bundle_max_files=4)
    report = seed_repository(small, SMALL_REPOSITORY)
    with dg.instance_for_test() as instance:
        yield Stack(small, report, LocalRunner(small, instance))
