"""Ready-made portals: a small readable company for demo and tests, big ones for benchmarks."""

from __future__ import annotations

import random
from typing import Final

from bot.sandbox.state import Chat, Department, PortalState, User, Webhook

WEBHOOK_USER_ID: Final = 1
WEBHOOK_CODE: Final = (
    "sandboxcode0000000000001"  # published: it is a sandbox, not a secret to guard
)
GENERAL_CHAT_ID: Final = 1

SALES_ALL_HANDS: Final = 101
EMEA_DEALS: Final = 102
MARKETING: Final = 103
ENGINEERING: Final = 104
BACKEND_GUILD: Final = 105
ANNOUNCEMENTS: Final = 106  # extend_forbidden: adding members is refused
SECRET_PROJECT: Final = 107  # the webhook user is not a member
TEAM_LEADS: Final = 108  # the webhook user is a plain member; adding needs the owner

_DEPARTMENTS: Final = [
    (1, "Example Corp", None),
    (2, "Sales", 1),
    (3, "Sales EMEA", 2),
    (4, "Sales DACH", 3),
    (5, "Marketing", 1),
    (6, "Engineering", 1),
    (7, "Backend", 6),
    (8, "Platform", 7),
    (9, "Support", 1),
]
# id, first name, last name, departments, active, user type
_PEOPLE: Final = [
    (1, "Alice", "Admin", [1], True, "employee"),
    (2, "Boris", "Becker", [2], True, "employee"),
    (3, "Clara", "Costa", [3], True, "employee"),
    (4, "Dieter", "Dorn", [4], True, "employee"),
    (5, "Eva", "Engel", [4], True, "employee"),
    (6, "Farid", "Fahmi", [5], True, "employee"),
    (7, "Grace", "Gray", [6], True, "employee"),
    (8, "Hiro", "Hayashi", [7], True, "employee"),
    (9, "Ines", "Iglesias", [8], True, "employee"),
    (10, "Jonas", "Jung", [9], True, "employee"),
    (11, "Karl", "Krause", [7], False, "employee"),  # dismissed
    (12, "Lena", "Lind", [], True, "extranet"),
]


def _timestamp(n: int) -> str:
    return f"2026-01-{1 + n % 28:02d}T09:{n % 60:02d}:00+00:00"


def sample_company() -> PortalState:
    state = PortalState()
    for dept_id, name, parent in _DEPARTMENTS:
        state.add_department(Department(dept_id, name, parent))
    for uid, first, last, depts, active, kind in _PEOPLE:
        email = f"{first.lower()}.{last.lower()}@example.com"
        state.add_user(User(uid, first, last, active, list(depts), email, kind, _timestamp(uid)))
    everyone = {u.id for u in state.users.values() if u.active and u.user_type == "employee"}
    chats = [
        Chat(GENERAL_CHAT_ID, "General", "general", owner=1, members=set(everyone)),
        Chat(SALES_ALL_HANDS, "Sales all-hands", owner=2, members={1, 2, 3}),
        Chat(
            EMEA_DEALS,
            "EMEA deals",
            owner=3,
            members={1, 3},
            managers={1},
            manage_users_add="manager",
        ),
        Chat(MARKETING, "Marketing", owner=6, members={1, 6}),
        Chat(ENGINEERING, "Engineering", owner=7, members={1, 7}, managers={1}),
        Chat(BACKEND_GUILD, "Backend guild", owner=1, members={1, 8}, manage_users_add="owner"),
        Chat(
            ANNOUNCEMENTS,
            "Announcements (read-only)",
            owner=1,
            members=set(everyone),
            extend_forbidden=True,
        ),
        Chat(SECRET_PROJECT, "Secret project", owner=7, members={7, 9}),
        Chat(TEAM_LEADS, "Team leads", owner=7, members={1, 2, 7}, manage_users_add="owner"),
    ]
    for chat in chats:
        state.add_chat(chat)
    state.webhooks.append(Webhook(WEBHOOK_USER_ID, WEBHOOK_CODE))
    return state


_FIRST: Final = ["Anna", "Ben", "Chen", "Dana", "Emil", "Fatima", "Gus", "Hana", "Ivan", "Jana"]
_LAST: Final = ["Berg", "Cole", "Diaz", "Ek", "Fox", "Gold", "Hale", "Ito", "Juul", "Kim"]
_UNITS: Final = ["Sales", "Ops", "Research", "Finance", "Legal", "Design", "Data", "QA", "IT"]


def generated_company(users: int, departments: int, chats: int, seed: int = 0) -> PortalState:
    """A random but reproducible company; the webhook user may add people to every chat."""
    if users < 1 or departments < 1 or chats < 0:
        raise ValueError("need at least one user and one department")
    rng = random.Random(seed)
    state = PortalState()
    state.add_department(Department(1, "Generated Corp"))
    for dept_id in range(2, departments + 1):
        parent = rng.randint(1, dept_id - 1)
        state.add_department(Department(dept_id, f"{rng.choice(_UNITS)} {dept_id}", parent))
    for uid in range(1, users + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        depts = (
            [1]
            if uid == 1
            else rng.sample(range(1, departments + 1), k=min(departments, rng.choice((1, 1, 1, 2))))
        )
        active = uid == 1 or rng.random() > 0.05
        email = f"{first.lower()}.{last.lower()}.{uid}@example.com"
        state.add_user(User(uid, first, last, active, depts, email, "employee", _timestamp(uid)))
    active_ids = sorted(u.id for u in state.users.values() if u.active)
    state.add_chat(Chat(GENERAL_CHAT_ID, "General", "general", owner=1, members=set(active_ids)))
    for n in range(chats):
        owner = rng.choice(active_ids)
        members = {WEBHOOK_USER_ID, owner, *rng.sample(active_ids, k=min(len(active_ids), 5))}
        state.add_chat(Chat(101 + n, f"Chat {101 + n}", owner=owner, members=members))
    state.webhooks.append(Webhook(WEBHOOK_USER_ID, WEBHOOK_CODE))
    return state
