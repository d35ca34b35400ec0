"""A brokerage's agents: who sends its messages, and its default agent for alerts."""
from __future__ import annotations

import sqlalchemy as sa

from .database import session, utcnow
from .errors import not_found
from .models import Agent, Brokerage


def add(brokerage_id: int, name: str, email: str, *, default: bool = False) -> int:
    """Add an agent to the brokerage (with `default`, its new default agent); return its id."""
    db = session()
    if default:
        db.execute(
            sa.update(Agent)
            .where(Agent.brokerage_id == brokerage_id, Agent.is_default)
            .values(is_default=False)
            .execution_options(synchronize_session=False)
        )
    agent_id = db.scalar(
        sa.insert(Agent)
        .values(brokerage_id=brokerage_id, name=name, email=email, is_default=default,
                created_at=utcnow())
        .returning(Agent.id)
    )
    db.commit()
    return agent_id


def of_brokerage(brokerage_id: int, agent_id: int) -> sa.Row:
    """Return (id, name, email, brokerage) of the brokerage's agent, or raise 404."""
    agent = session().execute(
        sa.select(Agent.id, Agent.name, Agent.email, Brokerage.name.label("brokerage"))
        .join(Brokerage, Brokerage.id == Agent.brokerage_id)
        .where(Agent.id == agent_id, Agent.brokerage_id == brokerage_id)
    ).first()
    if agent is None:
        raise not_found(f"This brokerage has no agent {agent_id}.")
    return agent
