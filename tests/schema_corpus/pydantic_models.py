"""Pydantic v2 models of common business records, for the schema corpus (kind `pydantic`).

Each is dumped with `model_json_schema()` where it is used, so the corpus follows whatever
schema shape the installed Pydantic emits ($defs, anyOf-with-null for Optional, discriminator
mappings, Decimal as number-or-pattern-string, ...).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Literal, Optional, Union
from uuid import UUID

from pydantic import BaseModel, Field, conint, constr


class Country(str, Enum):
    US = "US"
    GB = "GB"
    DE = "DE"
    FR = "FR"
    JP = "JP"


class Address(BaseModel):
    street: str = Field(max_length=120)
    city: str
    postal_code: constr(pattern=r"^[A-Z0-9 -]{3,10}$")
    country: Country
    is_default: bool = False


class Customer(BaseModel):
    id: UUID
    name: str = Field(min_length=1, max_length=80)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    phone: Optional[str] = None
    loyalty_points: conint(ge=0) = 0
    signed_up: date
    tags: list[str] = Field(default_factory=list, max_length=5)


class LineItem(BaseModel):
    sku: constr(pattern=r"^[A-Z]{3}-\d{4}$")
    description: str
    quantity: conint(ge=1, le=100)
    unit_price: Decimal = Field(ge=0, decimal_places=2)


class OrderStatus(str, Enum):
    pending = "pending"
    paid = "paid"
    shipped = "shipped"
    cancelled = "cancelled"


class Order(BaseModel):
    order_id: UUID
    customer_id: UUID
    placed_at: datetime
    status: OrderStatus
    items: list[LineItem] = Field(min_length=1, max_length=10)
    shipping_address: Address
    notes: Optional[str] = Field(default=None, max_length=500)


class Invoice(BaseModel):
    number: constr(pattern=r"^INV-\d{6}$")
    issued_on: date
    due_on: date
    currency: Literal["USD", "EUR", "GBP"]
    lines: list[LineItem]
    subtotal: Decimal
    tax_rate: float = Field(ge=0, le=0.5)
    total: Decimal
    paid: bool


class Comment(BaseModel):
    author: str
    body: str = Field(max_length=1000)
    posted_at: datetime
    likes: conint(ge=0) = 0
    replies: list[Comment] = Field(default_factory=list)


class BlogPost(BaseModel):
    slug: constr(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=80)
    title: str = Field(max_length=150)
    author: str
    published: Optional[datetime] = None
    tags: list[str] = Field(default_factory=list)
    body: str
    comments: list[Comment] = Field(default_factory=list)


class Severity(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"


class LogRecord(BaseModel):
    timestamp: datetime
    service: str
    severity: Severity
    message: str
    trace_id: Optional[constr(pattern=r"^[0-9a-f]{32}$")] = None
    duration_ms: Optional[float] = Field(default=None, ge=0)
    attributes: dict[str, str] = Field(default_factory=dict)
    counters: dict[str, int] = Field(default_factory=dict)


class Variant(BaseModel):
    sku: str
    color: Optional[str] = None
    size: Optional[Literal["XS", "S", "M", "L", "XL"]] = None
    price: Decimal = Field(gt=0)
    stock: dict[str, int] = Field(description="Units on hand per warehouse code")


class Product(BaseModel):
    id: int = Field(ge=1)
    name: str
    category: Literal["apparel", "electronics", "home", "toys"]
    variants: list[Variant] = Field(min_length=1)
    rating: Optional[float] = Field(default=None, ge=0, le=5)


class UserProfile(BaseModel):
    user_id: UUID
    username: constr(pattern=r"^[a-z][a-z0-9_]{2,19}$")
    display_name: Optional[str] = None
    birthday: Optional[date] = None
    addresses: list[Address] = Field(default_factory=list, max_length=3)
    preferences: dict[str, bool] = Field(default_factory=dict)
    age: Optional[conint(ge=13, le=120)] = None


class Priority(int, Enum):
    low = 1
    normal = 2
    high = 3
    urgent = 4


class TicketMessage(BaseModel):
    sender: Literal["customer", "agent", "bot"]
    sent_at: datetime
    text: str


class SupportTicket(BaseModel):
    ticket_id: constr(pattern=r"^T-\d{5}$")
    subject: str = Field(max_length=120)
    priority: Priority
    status: Literal["open", "waiting", "resolved", "closed"] = "open"
    customer: Customer
    messages: list[TicketMessage]
    assignee: Optional[str] = None


class CardPayment(BaseModel):
    kind: Literal["card"]
    brand: Literal["visa", "mastercard", "amex"]
    last4: constr(pattern=r"^\d{4}$")
    exp_month: conint(ge=1, le=12)
    exp_year: conint(ge=2024, le=2040)


class BankTransfer(BaseModel):
    kind: Literal["bank_transfer"]
    iban: constr(pattern=r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
    reference: str = Field(max_length=35)


class WalletPayment(BaseModel):
    kind: Literal["wallet"]
    provider: Literal["paypal", "apple_pay", "google_pay"]
    account_email: str


class Payment(BaseModel):
    payment_id: UUID
    amount: Decimal = Field(gt=0)
    currency: Literal["USD", "EUR", "GBP"]
    captured_at: Optional[datetime] = None
    method: Annotated[Union[CardPayment, BankTransfer, WalletPayment], Field(discriminator="kind")]


MODELS: dict[str, type[BaseModel]] = {
    "customer": Customer,
    "order": Order,
    "invoice": Invoice,
    "blog_post": BlogPost,
    "log_record": LogRecord,
    "product": Product,
    "user_profile": UserProfile,
    "support_ticket": SupportTicket,
    "payment": Payment,
}
