"""Schemas the tests share."""

import datetime
import enum
import uuid
from typing import Literal, Optional

from pydantic import BaseModel, Field

SEED_SCHEMA = {"customer_name": "string", "age": "int", "order_value": "float"}

# Every type and constraint the schema language supports, in one row.
EVERY_TYPE = {
    "name": {"type": "string", "description": "a customer's full name", "minLength": 2, "maxLength": 24},
    "age": {"type": "integer", "minimum": 18, "maximum": 90},
    "balance": {"type": "number", "minimum": -250.5, "maximum": 10000},
    "ratio": {"type": "number", "exclusiveMinimum": 0.1, "maximum": 0.9},
    "count": "int",
    "price": "float",
    "active": "bool",
    "signup": "date",
    "last_seen": "datetime",
    "email": "email",
    "id": "uuid",
    "tier": {"type": "string", "enum": ["free", "pro", "enterprise"]},
    "level": {"enum": [1, 2, 3]},
    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
    "nickname": {"type": ["string", "null"], "maxLength": 12},
    "score": {"type": ["integer", "null"], "minimum": -5, "maximum": 5},
    "address": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "zip": {"type": "string", "pattern": "[0-9]{5}"}},
    },
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 1, "maxItems": 3},
    "scores": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 100}, "maxItems": 2},
}


# A Pydantic model of the kinds of field real models have: what the "Done when" of real-world
# schemas asks for through REST, gRPC and the Python client.
class Tier(str, enum.Enum):
    free = "free"
    pro = "pro"


class Address(BaseModel):
    street: str
    city: str = Field(max_length=20)
    zip: Optional[str] = Field(None, pattern=r"^\d{5}$")


class Item(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-\d{4}$")
    quantity: int = Field(ge=1, le=20)
    price: float = Field(gt=0, lt=1000)


class Comment(BaseModel):
    text: str
    replies: list["Comment"] = []


class Customer(BaseModel):
    id: uuid.UUID
    name: str
    nickname: Optional[str] = None
    tier: Tier
    kind: Literal["person", "company"]
    address: Address
    items: list[Item] = Field(min_length=1, max_length=3)
    joined: datetime.date
    last_seen: Optional[datetime.datetime] = None
    scores: dict[str, int] = {}
    thread: Optional[Comment] = None
