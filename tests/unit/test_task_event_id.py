"""The applier's fast event id is the outbox contract's ``derived_event_id``, bit for bit."""

from __future__ import annotations

import uuid

from taskstream.messages import EVENT_TYPES
from taskstream.outbox.ids import derived_event_id, fast_event_id


def test_fast_event_id_equals_derived_event_id() -> None:
    for _ in range(200):
        cause = uuid.uuid4()
        for event_type in EVENT_TYPES:
            fast = fast_event_id(str(cause), event_type)
            assert fast == derived_event_id(cause, event_type)
            assert fast.version == 5
