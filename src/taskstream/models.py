"""Every model, imported once so ``Base.metadata`` is complete (Alembic, schema tests)."""

from taskstream.attachments.models import Attachment, Blob, UploadSession
from taskstream.auth.models import PasswordReset, RefreshSession, User
from taskstream.comments.models import Comment
from taskstream.db import Base
from taskstream.notifications.models import (
    EmailDelivery,
    Notification,
    NotificationPreference,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from taskstream.outbox.models import InboxEntry, OutboxEvent
from taskstream.projects.models import Project, ProjectInvitation, ProjectMember
from taskstream.tasks.models import (
    CommandStatus,
    ProjectActivity,
    ProjectStats,
    Task,
    TaskEvent,
    TaskReview,
)

metadata = Base.metadata

__all__ = [
    "Attachment",
    "Base",
    "Blob",
    "CommandStatus",
    "Comment",
    "EmailDelivery",
    "InboxEntry",
    "Notification",
    "NotificationPreference",
    "OutboxEvent",
    "PasswordReset",
    "Project",
    "ProjectActivity",
    "ProjectInvitation",
    "ProjectMember",
    "ProjectStats",
    "RefreshSession",
    "Task",
    "TaskEvent",
    "TaskReview",
    "UploadSession",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "metadata",
]
