"""The etcd store over TLS: gRPC credentials from the cell's CA and a client certificate.

etcd started with ``--client-cert-auth`` (``corral up --replicas N --tls``,
corral.store.etcd_cluster) accepts a client only with a certificate signed by
its trusted CA; a master presents its own (corral.tls.TlsFiles). aetcd 1.0.0's
``Client`` dials ``grpc.aio.insecure_channel`` only and takes no credentials,
so ``tls_client`` is that client with one change: ``connect`` opens a secure
channel (the rest of aetcd, stubs and watcher, is used as it is).
"""

from __future__ import annotations

from typing import Any


def credentials(tls: Any) -> Any:
    """``grpc.ssl_channel_credentials`` for a corral.tls.TlsFiles: verify etcd against the CA,
    present the certificate."""
    import grpc

    return grpc.ssl_channel_credentials(root_certificates=tls.ca.read_bytes(), private_key=tls.key.read_bytes(),
                                        certificate_chain=tls.cert.read_bytes())


def name_override(endpoints: list[str]) -> list[tuple[str, str]]:
    """gRPC options: verify every member's certificate against the first endpoint's host (the
    ``ipv4:a:p,b:p`` target of several members has no one host name of its own; members of one
    cluster are issued for the hosts they serve on: corral.store.etcd_cluster)."""
    return [("grpc.ssl_target_name_override", endpoints[0].rpartition(":")[0])]


def tls_client(aetcd: Any, tls: Any, **kwargs: Any) -> Any:
    """An ``aetcd.Client`` (``kwargs`` as its own) whose channel is TLS with ``tls``' files."""
    from aetcd import rpc, watcher

    creds = credentials(tls)

    class TlsClient(aetcd.Client):
        async def connect(self) -> None:
            if self._connected.is_set():
                return
            target = f"{self._host}:{self._port}"
            self.channel = rpc.secure_channel(target, creds, options=list(self._options.items()))
            self.kvstub = rpc.KVStub(self.channel)
            self.clusterstub = rpc.ClusterStub(self.channel)
            self.leasestub = rpc.LeaseStub(self.channel)
            self.maintenancestub = rpc.MaintenanceStub(self.channel)
            self._watcher = watcher.Watcher(rpc.WatchStub(self.channel), timeout=self._timeout,
                                            metadata=self.metadata)
            self._connected.set()

    return TlsClient(**kwargs)
