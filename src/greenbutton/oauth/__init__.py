"""Sans-IO OAuth 2.0 for Green Button (RFC 6749, RFC 7636): request builders and response
parsers that never perform I/O; the client's drivers send what they build."""

from ._token import Token, TokenKind, TokenStore

__all__ = ["Token", "TokenKind", "TokenStore"]
