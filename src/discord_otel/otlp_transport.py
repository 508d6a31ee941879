"""The HTTP transport of the OTLP/HTTP exporters: urllib3 where it behaves the same.

The OTLP/HTTP exporters send through ``requests`` by default, and importing it
costs the bot some 4 MB of memory and ~80 ms of start-up (``requests`` brings
``charset_normalizer``, ``idna`` and more, none of which an export needs). The
exporter package also ships a transport over ``urllib3`` alone (which
``requests`` itself sends through), selected by the exporters' ``_transport``
argument. We pass it only where nothing ``requests`` would have taken from the
environment is there:

- no proxy (``urllib.request.getproxies()``: the ``*_proxy`` variables, and the
  system settings on macOS and Windows), no ``NETRC`` variable or ``~/.netrc``
  file;
- no OTLP certificate, client key or client certificate variable, and no
  credential-provider session (those go through the exporter's own set-up);

and it verifies TLS against the CA bundle ``requests`` would use: the file in
``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, else certifi's (a directory
there keeps the default transport).
Anywhere else -- or with an exporter or package version without that
transport -- the exporter is built exactly as upstream builds it.
"""

from __future__ import annotations

import inspect
import logging
import os
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_OTLP_HTTP_MODULES = "opentelemetry.exporter.otlp.proto.http."

# What requests would read from the environment, beyond the proxies.
_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
# What the exporters' own transport set-up reads (any signal).
_EXPORTER_PREFIXES = (
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
)
_EXPORTER_SIGNAL_SUFFIXES = ("_CERTIFICATE", "_CLIENT_KEY", "_CLIENT_CERTIFICATE")


def transport_arguments(cls: type, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"_transport": ...}`` for an OTLP/HTTP exporter class where the urllib3
    transport behaves as the default one would; else ``{}``."""
    environ = os.environ if environ is None else environ
    if not cls.__module__.startswith(_OTLP_HTTP_MODULES):
        return {}
    try:
        if "_transport" not in inspect.signature(cls).parameters:
            return {}
        if _environment_matters(environ):
            return {}
        ca_bundle = _ca_bundle(environ)
        if ca_bundle is None:
            return {}
        from opentelemetry.exporter.http.transport import _load_http_transport_factory

        factory = _load_http_transport_factory("urllib3")
        return {"_transport": factory(verify=ca_bundle, cert=None)}
    except Exception:  # any surprise: the exporter's own transport
        logger.debug("discord-otel: keeping the default OTLP/HTTP transport", exc_info=True)
        return {}


def _environment_matters(environ: Any) -> bool:
    if urllib.request.getproxies():
        return True
    if environ.get("NETRC"):
        return True
    for name, value in environ.items():
        if not value:
            continue
        if name.startswith(_EXPORTER_PREFIXES):
            return True
        if name.startswith("OTEL_EXPORTER_OTLP_") and name.endswith(_EXPORTER_SIGNAL_SUFFIXES):
            return True
        if name.startswith("OTEL_PYTHON_EXPORTER_OTLP_HTTP_") and name.endswith(
            "_CREDENTIAL_PROVIDER"
        ):
            return True
    home = Path.home()
    return (home / ".netrc").exists() or (home / "_netrc").exists()


def _ca_bundle(environ: Mapping[str, str]) -> bool | str | None:
    """The CA bundle requests would verify against (None: one urllib3 cannot take)."""
    for name in _CA_BUNDLE_VARIABLES:
        value = environ.get(name)
        if value:
            return value if os.path.isfile(value) else None
    try:
        import certifi
    except ImportError:
        return True  # requests without certifi: the system's
    return str(certifi.where())
