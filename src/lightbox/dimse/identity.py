"""DICOM User Identity negotiation (PS3.7 D.3.3.7) checked against the archive's users: a user name and
passcode (type 2) as a web login's password is, a JSON Web Token (type 5) as an HTTP bearer JWT is."""

from __future__ import annotations

from collections.abc import Callable

from lightbox.dicomnet import pdu
from lightbox.domain.accounts import User
from lightbox.domain.actor import Actor
from lightbox.services.accounts import AccountService
from lightbox.services.oidc import OidcVerifier

USERNAME_AND_PASSCODE = 2
JWT = 5


def identifier(
    accounts: AccountService, oidc: OidcVerifier | None
) -> Callable[[pdu.UserIdentityRQ, Actor], User | None]:
    """The function that names the user of a User Identity sub-item, or None when it does not check;
    either way the attempt is published for the audit trail."""

    def identify(identity: pdu.UserIdentityRQ, actor: Actor) -> User | None:
        if identity.type == USERNAME_AND_PASSCODE:
            name = identity.primary.decode("utf-8", "replace")
            return accounts.check_password(name, identity.secondary.decode("utf-8", "replace"), actor)
        if identity.type == JWT and oidc is not None:
            user = oidc.user_of(identity.primary.decode("ascii", "replace"))
            if user is None:
                accounts.login_failed(actor, "oidc", "JSON Web Token refused")
            return user
        return None

    return identify
