"""Tortoise models, grouped by area. `MODEL_MODULES` is what the ORM config loads."""

from server.models.access import AdminSession, ApiToken, LoginAttempt, RecoveryCode, SetupCode
from server.models.bookings import Booking, Resource, Service
from server.models.automation import Rule, RuleRun, StageRevision, StageRun
from server.models.crm import (
    ELEMENT_MODELS,
    AuditEntry,
    Company,
    Contact,
    CustomerActivity,
    CustomField,
    Deal,
    DealContact,
    Element,
    Lead,
    Task,
    TimelineEntry,
    User,
    WorkCalendar,
    model_for,
)
from server.models.documents import Document, DocumentCounter, DocumentTemplate, DocumentView
from server.models.events import Event
from server.models.idempotency import IdempotencyKey
from server.models.messages import ChannelHook, DeliveryAttempt, ExceptionEntry, MailSender, Message, Suppression
from server.models.operations import WorkerBeat
from server.models.payments import Payment
from server.models.pipelines import Pipeline, Stage
from server.models.triggers import Trigger, TriggerActivation
from server.models.work import Activity, FeedPost, FeedRecipient, Notification, RoundRobinCursor

MODEL_MODULES = [
    "server.models.crm", "server.models.pipelines", "server.models.automation",
    "server.models.work", "server.models.access", "server.models.events", "server.models.messages",
    "server.models.triggers", "server.models.payments", "server.models.documents", "server.models.idempotency",
    "server.models.bookings", "server.models.operations",
]

__all__ = [
    "ELEMENT_MODELS",
    "Activity",
    "AdminSession",
    "ApiToken",
    "ChannelHook",
    "DeliveryAttempt",
    "Document",
    "DocumentCounter",
    "DocumentTemplate",
    "DocumentView",
    "ExceptionEntry",
    "MailSender",
    "Message",
    "Suppression",
    "Event",
    "FeedPost",
    "IdempotencyKey",
    "FeedRecipient",
    "LoginAttempt",
    "Notification",
    "RecoveryCode",
    "RoundRobinCursor",
    "SetupCode",
    "AuditEntry",
    "Booking",
    "Company",
    "Contact",
    "CustomField",
    "CustomerActivity",
    "Deal",
    "DealContact",
    "Element",
    "Lead",
    "MODEL_MODULES",
    "Payment",
    "Pipeline",
    "Resource",
    "Rule",
    "RuleRun",
    "Service",
    "Stage",
    "WorkerBeat",
    "StageRevision",
    "StageRun",
    "Task",
    "Trigger",
    "TriggerActivation",
    "TimelineEntry",
    "User",
    "WorkCalendar",
    "model_for",
]
