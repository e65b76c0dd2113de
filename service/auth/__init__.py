"""HTTP request -> `RequestContext` (user, tenant, role, locale): the one place identity is
decided. `AUTH_MODE` picks `jwt`, `api-token` (or both) or `dev`; see `factory.py`."""

from service.auth.errors import AuthenticationError, IdentityProviderUnavailable
from service.auth.factory import Authenticator, create_authenticator
from service.auth.locale import preferred_locale

__all__ = [
    "AuthenticationError",
    "Authenticator",
    "IdentityProviderUnavailable",
    "create_authenticator",
    "preferred_locale",
]
