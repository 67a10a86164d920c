"""Fixtures shared by every test room."""

from tests.etcd import etcd_cluster, etcd_tls_cluster, etcd_url, own_etcd  # noqa: F401
