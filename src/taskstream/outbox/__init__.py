"""The transactional outbox: events are written in the transaction of their cause and sent by
the relay (workers/relay.py) only after commit, so a rolled-back transaction sends nothing.

``models`` holds the rows, ``ids`` the deterministic event ids, ``repository`` the SQL that
writes, claims and marks rows sent."""
