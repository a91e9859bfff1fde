"""Reading a key of a Kubernetes Secret through the API: the agent's Kafka credentials when
the KafkaUser's Secret lives in another namespace than the agent.

Strimzi writes a KafkaUser's Secret (and the cluster CA's) in the Kafka namespace, which
a pod elsewhere cannot mount. The operator then names those Secrets in the runtime config
(``kafka.passwordSecret``, ``caSecret``, ...) and grants the agent's ServiceAccount
``get`` on exactly them (a Role in the Kafka namespace); :class:`SecretReader` reads them
at start, as :func:`chorus_agents.kafka.client_config`'s ``secrets``.

A value read is returned, never kept, logged or put in an error message or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx

from chorus_agents.kafka import CredentialsError

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "SecretAccessError",
    "SecretReader",
    "SecretRef",
    "secret_references",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where the kubelet mounts the pod's ServiceAccount token and the cluster CA."""
SECRET_FIELDS = ("password", "ca", "cert", "key")
"""The credentials of a ``KafkaConnection`` that may come from a Secret (``<field>_secret``)."""


class SecretRef(Protocol):
    """What names a Secret key: ``chorus_api.runtime.SecretKeySelector`` is one."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def key(self) -> str: ...


class SecretAccessError(CredentialsError):
    """A Secret key could not be read: refused (RBAC), missing, without that key, or the API
    unreachable. The message names the agent, the Secret and the key, never a value.

    ``status`` is the API's HTTP status (403, 404, ...) when it answered, else ``None``.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def secret_references(connection: Any) -> dict[str, SecretRef]:
    """The Secret references ``client_config`` will read for ``connection``, by field.

    A credential whose file is also set is read from the file, so its reference is left
    out: an empty result means no reader is needed.
    """
    refs: dict[str, SecretRef] = {}
    for field in SECRET_FIELDS:
        selector = getattr(connection, f"{field}_secret", None)
        if selector is not None and not getattr(connection, f"{field}_file", None):
            refs[field] = selector
    return refs


class SecretReader:
    """Reads one key of a Secret with ``GET /api/v1/namespaces/<ns>/secrets/<name>``.

    Call it with a ``SecretKeySelector`` (``reader(selector)``) or use :meth:`read`; either
    returns the key's value, base64-decoded, as UTF-8 text without surrounding whitespace
    (as a credential file is read), and raises :class:`SecretAccessError` otherwise.

    Authenticates with a bearer token (``token``, or ``token_file``, re-read on every call
    since a projected ServiceAccount token rotates) or a client certificate
    (``cert_file`` and ``key_file``). ``ca_file`` verifies the apiserver (the system CAs
    when omitted). ``agent`` (``<namespace>/<name>``) prefixes every error. Blocking:
    meant for the agent's start.
    """

    def __init__(
        self,
        server: str,
        *,
        ca_file: str | os.PathLike[str] | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        agent: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if sum(x is not None for x in (token, token_file, cert_file)) != 1:
            raise ValueError("give exactly one of token, token_file, or cert_file with key_file")
        if (cert_file is None) != (key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")
        self.server = server.rstrip("/")
        self.agent = agent
        self.timeout = timeout
        self._ca_file = os.fspath(ca_file) if ca_file is not None else None
        self._token = token
        self._token_file = os.fspath(token_file) if token_file is not None else None
        self._cert = (
            (os.fspath(cert_file), os.fspath(key_file))
            if cert_file is not None and key_file is not None
            else None
        )

    @classmethod
    def in_cluster(
        cls,
        *,
        agent: str | None = None,
        environ: Mapping[str, str] | None = None,
        service_account: str | os.PathLike[str] = SERVICE_ACCOUNT_DIR,
        timeout: float = 10.0,
    ) -> SecretReader:
        """The reader of a pod: the apiserver from ``KUBERNETES_SERVICE_HOST``/``_PORT``, the
        pod's ServiceAccount token and CA from ``service_account``.

        Raises :class:`SecretAccessError` when this process does not run in a cluster.
        """
        env = os.environ if environ is None else environ
        prefix = f"agent {agent}: " if agent else ""
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
        folder = Path(service_account)
        token, ca = folder / "token", folder / "ca.crt"
        if not host or not port:
            raise SecretAccessError(
                f"{prefix}cannot read Secrets through the Kubernetes API: not in a cluster "
                "(KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset)"
            )
        if not token.is_file():
            raise SecretAccessError(
                f"{prefix}cannot read Secrets through the Kubernetes API: no ServiceAccount "
                f"token at {token} (automountServiceAccountToken off?)"
            )
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        return cls(
            server,
            ca_file=ca if ca.is_file() else None,
            token_file=token,
            agent=agent,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        auth = "client certificate" if self._cert is not None else "bearer token"
        return f"SecretReader(server={self.server!r}, agent={self.agent!r}, auth={auth!r})"

    def __call__(self, selector: SecretRef) -> str:
        """The value of ``selector``'s key (the ``secrets`` reader of ``client_config``)."""
        return self.read(selector.namespace, selector.name, selector.key)

    def read(self, namespace: str, name: str, key: str) -> str:
        """The value of ``key`` of Secret ``namespace/name``."""
        prefix = f"agent {self.agent}: " if self.agent else ""
        what = f"secret {namespace}/{name}"
        headers = {"Accept": "application/json"}
        if self._cert is None:
            headers["Authorization"] = f"Bearer {self._bearer(prefix)}"
        url = f"{self.server}/api/v1/namespaces/{namespace}/secrets/{name}"
        try:
            with httpx.Client(verify=self._tls(), timeout=self.timeout) as client:
                response = client.get(url, headers=headers)
        except (httpx.HTTPError, OSError) as exc:
            raise SecretAccessError(
                f"{prefix}cannot read {what} from the Kubernetes API {self.server}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        status = response.status_code
        if status != 200:
            # An error answer is a Status object (no Secret data): its message helps.
            reason = _status_message(response)
            detail = f": {reason}" if reason else ""
            if status == 403:
                message = f"{prefix}may not read {what} (RBAC){detail}"
            elif status == 404:
                message = f"{prefix}{what} does not exist{detail}"
            elif status == 401:
                message = f"{prefix}cannot read {what}: the API refuses the credentials{detail}"
            else:
                message = f"{prefix}cannot read {what}: HTTP {status}{detail}"
            raise SecretAccessError(message, status=status)
        try:
            data = response.json().get("data") or {}
        except ValueError:
            raise SecretAccessError(f"{prefix}{what}: the API answered no JSON") from None
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise SecretAccessError(f"{prefix}{what} has no key {key!r} (its keys: {keys})")
        try:
            return base64.b64decode(data[key], validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError, TypeError):
            raise SecretAccessError(
                f"{prefix}{what}: key {key!r} is not base64-encoded UTF-8 text"
            ) from None

    def _tls(self) -> ssl.SSLContext:
        # Built per call: a rotated client certificate or CA is picked up too.
        context = ssl.create_default_context(cafile=self._ca_file)
        if self._cert is not None:
            context.load_cert_chain(*self._cert)
        return context

    def _bearer(self, prefix: str) -> str:
        if self._token is not None:
            return self._token
        assert self._token_file is not None
        try:
            return Path(self._token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretAccessError(
                f"{prefix}ServiceAccount token {self._token_file}: {exc.strerror or exc}"
            ) from None


def _status_message(response: httpx.Response) -> str:
    """The ``message`` of a Kubernetes ``Status`` answer, or ``""``."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and body.get("kind") == "Status":
        return str(body.get("message") or "")
    return ""
