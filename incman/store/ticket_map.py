"""A plugin's map of correlation key → remote ticket, for remotes with no correlation field.

CA Cloud Service Management is one; the map is kept in the `plugin_tickets` table, one row per
key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from incman.store.db import new_session
from incman.store.models import Base, utcnow


class PluginTicket(Base):
    """The ticket an integration made for a correlation key."""

    __tablename__ = "plugin_tickets"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    integration: Mapped[str] = mapped_column(String(64))
    correlation_key: Mapped[str] = mapped_column(String(64))
    remote_id: Mapped[str] = mapped_column(String(255))
    number: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("integration", "correlation_key", name="uq_plugin_tickets_key"),
    )


class TicketMapStore:
    """What a plugin is given to remember its tickets by key (one integration's rows)."""

    def __init__(self, integration: str) -> None:
        self.integration = integration

    def _row(self, session: Session, correlation_key: str) -> PluginTicket | None:
        return session.scalars(
            select(PluginTicket).where(
                PluginTicket.integration == self.integration,
                PluginTicket.correlation_key == correlation_key,
            )
        ).first()

    def remember(self, correlation_key: str, remote_id: str, number: str) -> None:
        """Store (or correct) the ticket of `correlation_key`."""
        for _ in range(2):  # a concurrent insert of the same key: read it and update
            with new_session() as session:
                row = self._row(session, correlation_key)
                if row is None:
                    row = PluginTicket(
                        integration=self.integration, correlation_key=correlation_key
                    )
                    session.add(row)
                row.remote_id, row.number = remote_id, number
                try:
                    session.commit()
                    return
                except IntegrityError:
                    session.rollback()
        raise RuntimeError(f"could not store the ticket of key {correlation_key}")

    def lookup(self, correlation_key: str) -> tuple[str, str] | None:
        """(remote id, number) of the ticket made for `correlation_key`, or None."""
        with new_session() as session:
            row = self._row(session, correlation_key)
            return (row.remote_id, row.number) if row is not None else None
