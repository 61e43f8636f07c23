"""The third party's web app (DESIGN 3.2, 3.6): connect a utility account with OAuth
(state + PKCE bound to the browser session), see its usage as charts, disconnect, and
receive BatchList notifications that queue ingest jobs.

::

    from greenbutton.web import WebConfig, create_app
    app = create_app(WebConfig.for_simulator("~/.local/share/greenbutton/simulator"))

Over HTTPS, with a client-certificate check on notifications (SECURITY R32, R40)::

    config = WebConfig.for_simulator(folder, tls_cert=cert, tls_key=key, client_ca=ca)
    uvicorn.Server(uvicorn_config(create_app(config), config, port=3000)).run()

Behind a TLS-terminating reverse proxy, the proxy forwards the utility's certificate in an
RFC 9440 ``Client-Cert`` header, honoured only from the proxy's address (R32)::

    config = WebConfig.for_simulator(folder, client_ca=ca, trusted_proxies=("10.0.0.5",),
                                     client_cert_header="Client-Cert", notify_allow=(...,))

Sessions live in the database (``web_sessions``, encrypted with the token store's key), so
several workers or a restarted app share them.

Needs the ``web`` dependencies (Starlette, Jinja2, itsdangerous, python-multipart) and the
``db`` extra for storage; charts need the ``plot`` extra.
"""

from ._app import create_app
from ._config import WebConfig
from ._tls import uvicorn_config

__all__ = ["WebConfig", "create_app", "uvicorn_config"]
