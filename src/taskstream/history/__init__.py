"""Task history: the audit trail of one task and the activity feed of a project, read from
``task_events``."""
