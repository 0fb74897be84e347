"""The ITSM Events API's requests (seed 004): one row per request, beside its incman event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from incman.store.models import Base, utcnow


class ItsmRequest(Base):
    """A request created by `POST /events`; its id is the `id` the API answers with."""

    __tablename__ = "itsm_requests"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str | None] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), nullable=True, index=True
    )
    account: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(String(255), default="")
    service_instance: Mapped[str] = mapped_column(String(255), default="")
    ci_key: Mapped[str] = mapped_column(String(600), default="")
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_for: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(32), default="assigned")
    record: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The record's waiting_until while it is waiting_for: what beat's wake-up reads.
    waiting_until: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_itsm_requests_match", "source", "created_at"),
        Index("ix_itsm_requests_waiting", "status", "waiting_until"),
    )
