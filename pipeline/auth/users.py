"""Users, roles and password hashing (argon2id).

Roles: an admin manages users and starts training, a reviewer labels, a viewer reads.
Every write in pipeline/ re-checks the acting user against the database with `authorize`, so
hiding a button in the app is never the only guard.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.models import ROLES, User, UserSession, utcnow
from pipeline.errors import UserError

MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_EMAIL = re.compile(r"^[^@\s]{1,128}@[^@\s]{1,127}$")
_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

WRITE_ROLES = ("admin", "reviewer")


@dataclass(frozen=True)
class AuthUser:
    """The signed-in user as the app holds it: detached from any database session."""

    id: int
    username: str
    role: str
    # The sha256 of the browser session this user came from (None: CLI, tests). A write made
    # with it is refused once that session has ended, even from a callback of an old page run.
    session_hash: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, user: User, session_hash: str | None = None) -> AuthUser:
        return cls(id=user.id, username=user.username, role=user.role, session_hash=session_hash)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def require_role(user: AuthUser | User | None, *roles: str) -> None:
    """Raise PermissionError unless `user` has one of `roles` (any role when none are given)."""
    if user is None:
        raise PermissionError("not signed in")
    if roles and user.role not in roles:
        raise PermissionError(
            f"{user.username} is a {user.role}; this needs the role {' or '.join(roles)}"
        )


def authorize(session: Session, user: AuthUser | User | None, *roles: str) -> User:
    """Re-read the acting user from the database (role changes and deactivation take effect at
    once), check the role, and return the row. Raises PermissionError."""
    if user is None:
        raise PermissionError("not signed in")
    row = session.get(User, user.id)
    if row is None or not row.active or row.username != user.username:
        raise PermissionError(f"user {user.username} is no longer active")
    if isinstance(user, AuthUser) and user.session_hash is not None:
        from pipeline.auth import sessions  # sessions imports this module

        if not sessions.is_open(session, user.session_hash):
            raise PermissionError("your session has ended; please sign in again")
    require_role(row, *roles)
    return row


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")


def _normal_email(email: str | None) -> str | None:
    """Lower-cased e-mail, None for empty; UserError when it is not an address."""
    if email is None or not email.strip():
        return None
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise UserError(f"invalid e-mail address {email!r}")
    return email


def _check_email_free(session: Session, email: str | None, user_id: int | None) -> None:
    if email is None:
        return
    owner = session.scalar(select(User).where(User.email == email))
    if owner is not None and owner.id != user_id:
        raise UserError(f"the e-mail {email} already belongs to {owner.username}")


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    actor: AuthUser | User | None = None,
    email: str | None = None,
) -> User:
    """Add a user. `actor` must be an admin when given; the CLI (a local operator) passes None."""
    if actor is not None:
        authorize(session, actor, "admin")
    username = username.strip()
    if not _USERNAME.match(username):
        raise UserError(
            f"invalid user name {username!r}: use letters, digits, '_', '.', '@' or '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    _check_role(role)
    _check_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} already exists")
    email = _normal_email(email)
    _check_email_free(session, email, None)
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        active=True,
        email=email,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> AuthUser | None:
    """The user if the name and password match an active account, else None."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None or not user.active:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return AuthUser.of(user)


def user_for_email(session: Session, email: str | None, verified: bool | None) -> AuthUser | None:
    """Single sign-on: the active local user whose e-mail the provider vouched for, else None.
    An e-mail the provider marks unverified, or one no admin has given to a user, gets no access."""
    if not email or verified is False:
        return None
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        return None
    return AuthUser.of(user)


def revoke_user_sessions(session: Session, user_id: int) -> int:
    """End every open session of a user (deactivated, or the password changed). Returns how many."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount or 0


def current(session: Session, user: AuthUser) -> AuthUser | None:
    """The user as the database has it now, or None if removed or deactivated."""
    row = session.get(User, user.id)
    if row is None or not row.active or row.username != user.username:
        return None
    return AuthUser.of(row)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def _active_admins(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))
    )


def _target(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user named {username!r}")
    return user


def update_user(
    session: Session,
    *,
    username: str,
    actor: AuthUser | User | None,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
    email: str | None = None,
) -> User:
    """Change a user's role, active flag, password or e-mail ("" removes it). Admin only (None =
    local CLI operator). Deactivating a user or setting their password ends all their sessions.
    The last active admin cannot be demoted or deactivated: nobody could manage users again."""
    if actor is not None:
        authorize(session, actor, "admin")
    user = _target(session, username)
    if role is not None:
        _check_role(role)
    loses_admin = (
        user.role == "admin" and user.active and (role not in (None, "admin") or active is False)
    )
    if loses_admin and _active_admins(session) <= 1:
        raise UserError(f"{username} is the last active admin; add another admin first")
    if password is not None:
        _check_password(password)
    if email is not None:
        email_value = _normal_email(email)
        _check_email_free(session, email_value, user.id)
        user.email = email_value
    if role is not None:
        user.role = role
    if active is not None:
        user.active = active
    if password is not None:
        user.password_hash = hash_password(password)
    if active is False or password is not None:
        revoke_user_sessions(session, user.id)
    session.flush()
    return user


def any_admin(session: Session) -> bool:
    return _active_admins(session) > 0


def random_password() -> str:
    return secrets.token_urlsafe(15)
