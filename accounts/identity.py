"""Who is acting: the signed-in user as the domains see it (no web objects)."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Role, User


@dataclass(frozen=True, slots=True)
class Actor:
    id: int | None
    name: str
    role: Role
    agency_id: int | None = None
    extension: str | None = None
    language: str = "vi"
    # the sign-in name (tickets.confidential names the cleared accounts by it)
    username: str | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(
            id=user.id,
            name=user.display_name,
            role=Role(user.role),
            agency_id=user.agency_id,
            extension=user.extension,
            language=user.language,
            username=user.username,
        )

    def is_(self, *roles: Role) -> bool:
        return self.role in roles


# The system itself: deadline escalation and other automatic steps.
SYSTEM = Actor(id=None, name="system", role=Role.ADMIN)

# The citizen answering the phone survey (agi.survey): reopens the report their call made
# when they are not satisfied.  No one signs in as it; the survey calls only ``reopen``.
CITIZEN = Actor(id=None, name="citizen", role=Role.ADMIN)
