"""Chat messages for the customer service domain, with an angry customer injected.

Conversations start at random (about ``conversations_per_hour``) among the customers; a
customer opens a question, an agent answers within a minute or two, and a few friendly
exchanges later the customer thanks them. In a quiet run customer sentiment stays at or
above :data:`NORMAL_MIN_SENTIMENT`, every agent reply comes within
:data:`NORMAL_MAX_WAIT_SECONDS`, and no customer starts a new conversation within
:data:`RECONTACT_WINDOW_SECONDS` of their last one. An :class:`AngryCustomer` breaks all
three: their sentiment falls message after message, the agent takes minutes to answer,
and soon after the conversation ends they write again. The Flink support job should see
the sentiment trend, the waits and the repeat contact, and the agents step in.

Each message is ``{"conversation_id", "customer_id", "role", "text", "sentiment",
"event_time"}`` (role ``customer`` or ``agent``, sentiment in [-1, 1], event time as
``YYYY-MM-DD HH:MM:SS.fff`` in UTC), keyed by conversation id: the input of the Flink
support job on topic ``support.messages``. The generator is pure (an iterator of records
in event-time order); writing them to Kafka is the caller's business.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from chorus_agents.support.crm import CUSTOMERS

TOPIC = "support.messages"
CUSTOMER_IDS: tuple[str, ...] = tuple(c.customer_id for c in CUSTOMERS)
NORMAL_MIN_SENTIMENT = -0.3
NORMAL_MAX_WAIT_SECONDS = 180.0
RECONTACT_WINDOW_SECONDS = 3600.0

Role = Literal["customer", "agent"]

_QUESTIONS = (
    "Hi, my order hasn't arrived yet, can you check where it is?",
    "Hello, I think I was charged twice for my last order.",
    "How do I reset my password? The link doesn't seem to work.",
    "Can I still change the delivery address on my order?",
    "The item I received is damaged, what are my options?",
    "I'd like to cancel my subscription at the end of the month.",
)
_ANSWERS = (
    "Thanks for reaching out! Let me look into that for you.",
    "I've checked your account, and here is what I found.",
    "Good news: that's easy to sort out, I've updated it for you.",
    "I've sent you an email with the details and a link.",
)
_FOLLOW_UPS = (
    "OK, that makes sense.",
    "Could you confirm when that will happen?",
    "Alright, I'll keep an eye on it.",
)
_THANKS = ("Great, thank you!", "Thanks, that solved it.", "Perfect, have a nice day.")
_ANGRY = (
    "My order is two weeks late and nobody has told me anything.",
    "I have been waiting for an answer for ages. Where is my order?",
    "This is ridiculous, I was promised delivery last week.",
    "Nobody is helping me. I want a refund now.",
    "This is the worst service I have ever had. I'm cancelling everything.",
    "Still nothing?! Unbelievable.",
)
_APOLOGIES = (
    "I'm sorry for the wait, I'm checking with the warehouse.",
    "Apologies, I'm still waiting to hear back from the carrier.",
    "I understand your frustration, I'm escalating this now.",
)
_AGAIN = "I'm writing again because nothing has happened since my last chat. Unacceptable."


@dataclass(frozen=True)
class AngryCustomer:
    """An injected incident: ``customer_id`` opens an increasingly angry chat at ``at_seconds``."""

    customer_id: str
    at_seconds: float
    messages: int = 5
    """Customer messages in the first conversation; the sentiment falls with each."""
    first_wait_seconds: float = 300.0
    last_wait_seconds: float = 900.0
    recontact_after_seconds: float = 600.0

    @property
    def incident_id(self) -> str:
        return f"angry-customer:{self.customer_id}@{self.at_seconds:g}"


@dataclass(frozen=True)
class Message:
    conversation_id: str
    customer_id: str
    role: Role
    text: str
    sentiment: float
    event_time: datetime

    def record(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "customer_id": self.customer_id,
            "role": self.role,
            "text": self.text,
            "sentiment": self.sentiment,
            "event_time": self.event_time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }


_Draft = tuple[float, Role, str, float]
"""A message before it has a conversation id: seconds into the run, role, text, sentiment."""


_CLOSINGS = (
    "You're welcome! I'll close this chat now; have a great day.",
    "Glad I could help. Closing the conversation, take care!",
    "Happy to help. This chat is closed; write again any time.",
)
"""The agent's last message of a calm conversation."""


def _calm(rng: random.Random, t: float) -> list[_Draft]:
    drafts: list[_Draft] = []
    mood = rng.uniform(-0.1, 0.4)
    exchanges = rng.randint(1, 3)
    drafts.append((t, "customer", rng.choice(_QUESTIONS), mood))
    for n in range(exchanges):
        t += rng.uniform(15.0, 150.0)
        drafts.append((t, "agent", rng.choice(_ANSWERS), rng.uniform(0.4, 0.8)))
        t += rng.uniform(20.0, 90.0)
        last = n == exchanges - 1
        mood = min(0.9, mood + rng.uniform(0.05, 0.25))
        drafts.append((t, "customer", rng.choice(_THANKS if last else _FOLLOW_UPS), mood))
    # The agent closes the chat: a thank-you left unanswered would be a customer waiting.
    t += rng.uniform(10.0, 60.0)
    drafts.append((t, "agent", rng.choice(_CLOSINGS), rng.uniform(0.5, 0.8)))
    return drafts


def _angry(rng: random.Random, incident: AngryCustomer) -> tuple[list[_Draft], list[_Draft]]:
    first: list[_Draft] = []
    t = incident.at_seconds
    count = max(2, incident.messages)
    for n in range(count):
        share = n / (count - 1)
        sentiment = -0.1 - 0.8 * share + rng.uniform(-0.03, 0.03)
        first.append((t, "customer", _ANGRY[min(n, len(_ANGRY) - 1)], sentiment))
        if n == count - 1:
            break
        wait = incident.first_wait_seconds + share * (
            incident.last_wait_seconds - incident.first_wait_seconds
        )
        t += wait
        first.append((t, "agent", _APOLOGIES[n % len(_APOLOGIES)], rng.uniform(0.0, 0.2)))
        t += rng.uniform(20.0, 60.0)
    t += incident.recontact_after_seconds
    again: list[_Draft] = [(t, "customer", _AGAIN, -0.9 + rng.uniform(-0.05, 0.0))]
    return first, again


def messages(
    customers: Sequence[str] = CUSTOMER_IDS,
    *,
    seconds: float,
    conversations_per_hour: float = 4.0,
    start: datetime | None = None,
    incidents: tuple[AngryCustomer, ...] = (),
    seed: int = 7,
) -> Iterator[Message]:
    """The messages of every conversation started in ``seconds``, in event-time order.

    Conversations are numbered ``conv-00001``, ... by start time. Customers named by an
    incident have no other conversation in the run, so the incident stands alone.
    """
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    angry = {i.customer_id for i in incidents}
    unknown = angry - set(customers)
    if unknown:
        raise ValueError(f"incidents name customers not in the run: {sorted(unknown)}")
    calm_customers = sorted(set(customers) - angry)
    free_at = dict.fromkeys(calm_customers, 0.0)
    conversations: list[tuple[float, str, list[_Draft]]] = []
    t = rng.expovariate(conversations_per_hour / 3600.0)
    while t < seconds:
        free = [c for c in calm_customers if free_at[c] <= t]
        if free:
            customer = rng.choice(free)
            drafts = _calm(rng, t)
            free_at[customer] = drafts[-1][0] + RECONTACT_WINDOW_SECONDS
            conversations.append((t, customer, drafts))
        t += rng.expovariate(conversations_per_hour / 3600.0)
    for incident in incidents:
        first, again = _angry(rng, incident)
        conversations.append((first[0][0], incident.customer_id, first))
        conversations.append((again[0][0], incident.customer_id, again))
    conversations.sort(key=lambda c: (c[0], c[1]))
    out = []
    for n, (_, customer, drafts) in enumerate(conversations, start=1):
        for offset, role, text, sentiment in drafts:
            if offset >= seconds:
                break
            out.append(
                Message(
                    conversation_id=f"conv-{n:05d}",
                    customer_id=customer,
                    role=role,
                    text=text,
                    sentiment=round(max(-1.0, min(1.0, sentiment)), 3),
                    event_time=start + timedelta(seconds=offset),
                )
            )
    out.sort(key=lambda m: (m.event_time, m.conversation_id))
    yield from out
