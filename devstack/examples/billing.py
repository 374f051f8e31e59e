"""The billing example of docs/upstream-events.md: subscription events of a billing system.

A `Subscription` is one event in neutral form (decimals as `Decimal`, timestamps as UTC
datetimes with millisecond precision); `subscription_events` makes a realistic stream of them
(repeated subscriptions, both schema versions mixed). The committed files beside this module
are the example itself: the Avro schema in two versions (`billing-subscription-v1.avsc`;
`-v2.avsc` adds `discount_amount` and `trial_end`, both defaulting to null) and the mapping to
HubSpot (`billing-subscription.mapping.yaml`). `avro_serializers` writes events with
confluent-kafka's AvroSerializer, registering each version under the topic's subject; the
Protobuf and JSON Schema forms of the same event are in devstack/examples/formats.py. A
development tool: never imported by `service/`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

EXAMPLES = Path(__file__).resolve().parent
MAPPING_FILE = EXAMPLES / "billing-subscription.mapping.yaml"
AVRO_SCHEMAS = {
    1: EXAMPLES / "billing-subscription-v1.avsc",
    2: EXAMPLES / "billing-subscription-v2.avsc",
}
# The HubSpot properties the mapping writes beyond the emulator's default subscription ones.
CUSTOM_PROPERTIES = frozenset(
    {
        "billing_customer_id",
        "billing_customer_email",
        "billing_seats",
        "billing_period_end",
        "billing_cancel_at_period_end",
        "billing_discount_amount",
        "billing_trial_end",
        "billing_source",
    }
)
STATUSES = ("TRIALING", "ACTIVE", "ACTIVE", "ACTIVE", "PAST_DUE", "UNPAID", "CANCELED")
PLANS = (("basic-m", "Basic", "MONTH"), ("pro-m", "Pro", "MONTH"), ("pro-y", "Pro", "YEAR"))
SCALE = Decimal("0.0001")  # the schemas' decimals have 4 digits after the point


@dataclass(frozen=True)
class Item:
    price_code: str
    quantity: int
    unit_amount: Decimal


@dataclass(frozen=True)
class Subscription:
    """One billing event; `version` is the schema version it is written with."""

    event_id: str
    subscription_id: str
    customer_id: str
    customer_email: str | None
    plan_code: str
    plan_name: str
    interval: str
    status: str
    currency: str
    amount: Decimal
    period_start: datetime
    period_end: datetime
    items: tuple[Item, ...]
    cancel_at_period_end: bool
    version: int = 1
    discount_amount: Decimal | None = None
    trial_end: datetime | None = None


def subscription_events(count: int, subscriptions: int, seed: int) -> list[Subscription]:
    """`count` events of `subscriptions` ids; every other event uses schema version 2."""
    rng = random.Random(seed)
    return [_event(n, rng, subscriptions) for n in range(count)]


def _event(n: int, rng: random.Random, subscriptions: int) -> Subscription:
    number = rng.randrange(subscriptions)
    code, name, interval = rng.choice(PLANS)
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(
        days=rng.randrange(700), milliseconds=rng.randrange(86_400_000)
    )
    items = _items(rng, code)
    amount = sum((item.unit_amount * item.quantity for item in items), Decimal(0)).quantize(SCALE)
    version = 1 + n % 2
    status = rng.choice(STATUSES)
    return Subscription(
        event_id=f"evt-{n:07d}",
        subscription_id=f"sub-{number:05d}",
        customer_id=f"cus-{number * 7 % 100_003:06d}",
        customer_email=f"billing+{number}@example.com" if number % 5 else None,
        plan_code=code,
        plan_name=f"{name} ({'monthly' if interval == 'MONTH' else 'yearly'})",
        interval=interval,
        status=status,
        currency=rng.choice(("EUR", "USD", "GBP")),
        amount=amount,
        period_start=start,
        period_end=start + timedelta(days=30 if interval == "MONTH" else 365),
        items=items,
        cancel_at_period_end=status == "CANCELED" or rng.random() < 0.1,
        version=version,
        discount_amount=Decimal(rng.randrange(0, 5_000)).scaleb(-2).quantize(SCALE)
        if version == 2 and rng.random() < 0.5
        else None,
        trial_end=start + timedelta(days=14) if version == 2 and status == "TRIALING" else None,
    )


def _items(rng: random.Random, code: str) -> tuple[Item, ...]:
    base = Item(code, 1, Decimal(rng.randrange(900, 99_900)).scaleb(-2).quantize(SCALE))
    if rng.random() < 0.6:
        return (base,)
    # a very large seat price keeps decimals honest: far beyond a float's 15-17 digits
    seats = Item(
        "seat",
        rng.randrange(2, 50),
        Decimal("12345678901234.5678") if rng.random() < 0.05 else Decimal("9.9900"),
    )
    return base, seats


def avro_record(event: Subscription) -> dict[str, Any]:
    """The event as its Avro schema version's record."""
    record: dict[str, Any] = {
        "event_id": event.event_id,
        "subscription_id": event.subscription_id,
        "customer": {"id": event.customer_id, "email": event.customer_email},
        "plan": {"code": event.plan_code, "name": event.plan_name, "interval": event.interval},
        "status": event.status,
        "currency": event.currency,
        "amount": event.amount,
        "current_period": {"start": event.period_start, "end": event.period_end},
        "items": [
            {"price_code": i.price_code, "quantity": i.quantity, "unit_amount": i.unit_amount}
            for i in event.items
        ],
        "cancel_at_period_end": event.cancel_at_period_end,
    }
    if event.version == 2:
        record.update(discount_amount=event.discount_amount, trial_end=event.trial_end)
    return record


def avro_serializers(client: SchemaRegistryClient, topic: str) -> Callable[[Subscription], bytes]:
    """Writes an event in the Confluent wire format with its version's Avro schema (each
    version registered under `<topic>-value` on first use)."""
    serializers = {
        version: AvroSerializer(client, path.read_text()) for version, path in AVRO_SCHEMAS.items()
    }
    context = SerializationContext(topic, MessageField.VALUE)

    def serialize(event: Subscription) -> bytes:
        data = serializers[event.version](avro_record(event), context)
        assert data is not None
        return data

    return serialize
