"""Activities the engine completes: those marked "auto-complete" when their element changes stage."""

from tortoise.expressions import F

from server import clock
from server.models import Activity


async def complete_on_stage_change(element_type: str, element_id: int) -> int:
    """Complete the element's open auto-complete activities; SEQUENCE moves so calendars update."""
    now = clock.utcnow()
    return await Activity.filter(
        element_type=element_type, element_id=element_id, auto_complete=True, completed=False
    ).update(completed=True, completed_at=now, updated_at=now, sequence=F("sequence") + 1)
