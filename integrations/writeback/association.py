"""Munchkin association: joins Marketo's anonymous web history to the lead.

Associate Lead has no batch form, so each (lead, cookie) pair costs one call;
it is made once per pair and counted apart from the batched writes.
"""

import logging

from agents.models import Visitor
from integrations.marketo.exceptions import MarketoRequestError
from integrations.models import WritebackRecord
from integrations.writeback.context import FlushContext
from integrations.writeback.outcomes import mark_skipped, mark_succeeded

logger = logging.getLogger(__name__)


def run_association(ctx: FlushContext, record: WritebackRecord):
    cookie = record.conversation.munchkin_cookie
    visitor = Visitor.objects.filter(organization=ctx.connection.organization, email=record.email).first()
    if visitor is not None and cookie in visitor.associated_cookies:
        mark_succeeded(record, note="Cookie already associated with this lead.")
        return

    try:
        ctx.report.batches += 1
        ctx.client.associate_lead(record.marketo_lead_id, cookie)
    except MarketoRequestError as error:
        if error.code == "1012":
            mark_skipped(record, f"Marketo rejected the Munchkin cookie as invalid ({error.code}).", code="1012")
            ctx.report.count("skipped", "associate")
            return
        raise

    if visitor is not None:
        Visitor.objects.filter(pk=visitor.pk).update(associated_cookies=[*visitor.associated_cookies, cookie])
    mark_succeeded(record)
    ctx.report.count("written", "associate")
    logger.info("writeback.associate.done record=%s lead=%s", record.pk, record.marketo_lead_id)
