"""One Kubernetes configuration for both kopf and our own kubernetes_asyncio calls."""

from __future__ import annotations

import inspect
import os
from typing import Any

import kopf
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import ApiClient, Configuration

from worker.settings import ControllerSettings

_SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


async def load_configuration(settings: ControllerSettings) -> Configuration:
    """The kubeconfig named by KUBECONFIG, else the pod's service account, else ~/.kube/config."""
    configuration = Configuration()
    if settings.kubeconfig:
        await kube_config.load_kube_config(
            config_file=settings.kubeconfig.split(os.pathsep)[0], client_configuration=configuration
        )
    elif os.path.exists(_SERVICE_ACCOUNT_TOKEN):  # noqa: ASYNC240 - once, at startup
        kube_config.load_incluster_config(client_configuration=configuration)
    else:
        await kube_config.load_kube_config(client_configuration=configuration)
    return configuration


def api_client(configuration: Configuration) -> ApiClient:
    return ApiClient(configuration)


async def connection_info(configuration: Configuration) -> kopf.ConnectionInfo:
    """kopf's view of the same credentials (token, client certificate, or both)."""
    header: Any = configuration.get_api_key_with_prefix("BearerToken")
    if inspect.isawaitable(header):  # a coroutine in newer kubernetes_asyncio releases
        header = await header
    scheme, token = None, None
    if header:
        first, _, rest = str(header).partition(" ")
        scheme, token = (first, rest) if rest else (None, first)
    return kopf.ConnectionInfo(
        server=str(configuration.host),
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )
