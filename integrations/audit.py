"""Audit log of configuration changes: who, when and what changed (never secrets)."""

import logging

from integrations.models import AuditLogEntry

logger = logging.getLogger(__name__)


def record_change(organization, actor: str, action: str, object_type: str, object_repr: str, changes: dict):
    AuditLogEntry.objects.create(
        organization=organization,
        actor=str(actor)[:200],
        action=action,
        object_type=object_type,
        object_repr=str(object_repr)[:300],
        changes=changes,
    )
    logger.info(
        "audit.change org=%s actor=%s action=%s object=%s:%s",
        getattr(organization, "slug", None), actor, action, object_type, object_repr,
    )
