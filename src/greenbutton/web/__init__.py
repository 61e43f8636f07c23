"""The third party's web app (DESIGN 3.2, 3.6): connect a utility account with OAuth
(state + PKCE bound to the browser session), see its usage as charts, disconnect, and
receive BatchList notifications that queue ingest jobs.

::

    from greenbutton.web import WebConfig, create_app
    app = create_app(WebConfig.for_simulator("~/.local/share/greenbutton/simulator"))

Needs the ``web`` dependencies (Starlette, Jinja2, itsdangerous, python-multipart) and the
``db`` extra for storage; charts need the ``plot`` extra.
"""

from ._app import create_app
from ._config import WebConfig

__all__ = ["WebConfig", "create_app"]
