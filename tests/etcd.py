"""A real 3-member etcd cluster on loopback for tests; without the binary (or the client) those
tests skip and say what to install."""

from __future__ import annotations

import itertools
import shutil
import tempfile

import pytest

from corral.store.etcd_cluster import ETCD_PACKAGE, EtcdCluster

_prefixes = itertools.count()


def skip_without_etcd() -> None:
    if shutil.which("etcd") is None:
        pytest.skip(f"etcd is not installed (apt-get install {ETCD_PACKAGE})")
    try:
        import aetcd  # noqa: F401
    except ImportError:
        pytest.skip("the etcd client is not installed (pip install aetcd==1.0.0)")


def start_cluster(members: int = 3, tls: bool = False) -> tuple[EtcdCluster, str]:
    """A cluster in a fresh directory; ``tls``: its members speak TLS with certificates of a CA
    made in ``DIR/ca`` and want clients' certificates of it."""
    skip_without_etcd()
    directory = tempfile.mkdtemp(prefix="corral-etcd-")
    try:
        ca = None
        if tls:
            from corral.tls import init_ca

            ca = f"{directory}/ca"
            init_ca(ca)
        return EtcdCluster(f"{directory}/etcd", members=members, ca=ca).start(timeout_s=30.0), directory
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


@pytest.fixture(scope="session")
def etcd_cluster():
    """One cluster for the session; each test takes its own key prefix (``etcd_url``)."""
    cluster, directory = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def etcd_tls_cluster():
    """A TLS cluster for the session (client certificate auth): ``(cluster, a master's TlsFiles)``."""
    from corral.tls import issue

    cluster, directory = start_cluster(tls=True)
    try:
        yield cluster, issue(f"{directory}/ca", "master0", role="master")
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def own_etcd():
    """A cluster of this test's own, for tests that kill its members."""
    cluster, directory = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def etcd_url(etcd_cluster):
    return f"{etcd_cluster.url}/test{next(_prefixes)}"
