"""Enumerations shared by the models, the wire contracts and the HTTP schemas."""

from __future__ import annotations

from enum import StrEnum


class UserRole(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class ProjectRole(StrEnum):
    OWNER = "owner"
    MAINTAINER = "maintainer"
    MEMBER = "member"
    VIEWER = "viewer"


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"


class TaskStatus(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    IN_REVIEW = "in_review"
    DONE = "done"
    CANCELLED = "cancelled"


class TaskPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class ReviewVerdict(StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"


class CommandState(StrEnum):
    ACCEPTED = "accepted"
    APPLIED = "applied"
    REJECTED = "rejected"


class NotificationChannel(StrEnum):
    IN_APP = "in_app"
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    DEAD = "dead"


class AttachmentState(StrEnum):
    """Where an attachment stands in the processing pipeline; the last three are final."""

    RECEIVED = "received"
    SCANNING = "scanning"
    DEDUPLICATING = "deduplicating"
    COMPRESSING = "compressing"
    STORED = "stored"
    QUARANTINED = "quarantined"
    FAILED = "failed"


class UploadSessionState(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
