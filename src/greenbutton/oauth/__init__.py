"""Sans-IO OAuth 2.0 for Green Button (RFC 6749, RFC 7636): request builders and response
parsers that never perform I/O; the client's drivers send what they build.

Authorization code flow::

    pending = authorization_request(profile, creds.client_id, redirect_uri)
    # send the customer to pending.url; keep `pending` for this one flow
    code = parse_callback(callback_url, pending, now=time.time())
    request = code_request(profile, creds, code, redirect_uri=pending.redirect_uri,
                           code_verifier=pending.code_verifier)
    token = parse_token_response(send(request), kind="access", now=time.time())

The token stores implement the ``TokenStore`` protocol: ``InMemoryTokenStore`` (one process)
and ``FileTokenStore`` (a 0600 JSON file; file I/O, no network); the database store is
``greenbutton.storage.DatabaseTokenStore``.
"""

from ._authorize import (
    AuthorizationRequest,
    authorization_request,
    code_challenge_s256,
    parse_callback,
)
from ._file_store import FileTokenStore
from ._requests import (
    basic_authorization,
    client_credentials_request,
    code_request,
    refresh_request,
    revoke_request,
)
from ._responses import parse_retry_after, parse_revocation_response, parse_token_response
from ._scope import Scope, format_scope, parse_scope
from ._store import InMemoryTokenStore
from ._token import (
    REAUTH_REQUIRED,
    LockedToken,
    SupportsLockedRefresh,
    SupportsStatus,
    Token,
    TokenKind,
    TokenStore,
)

__all__ = [
    "AuthorizationRequest",
    "FileTokenStore",
    "InMemoryTokenStore",
    "LockedToken",
    "REAUTH_REQUIRED",
    "Scope",
    "SupportsLockedRefresh",
    "SupportsStatus",
    "Token",
    "TokenKind",
    "TokenStore",
    "authorization_request",
    "basic_authorization",
    "client_credentials_request",
    "code_challenge_s256",
    "code_request",
    "format_scope",
    "parse_callback",
    "parse_retry_after",
    "parse_revocation_response",
    "parse_scope",
    "parse_token_response",
    "refresh_request",
    "revoke_request",
]
