"""What the hotline runtime writes about a call, through the real database store (SQLite here; PostgreSQL
under HUIYAN_TEST_POSTGRES): a call transferred into a queue keeps the menu key its first leg chose."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker

from huiyan.bus import EventBus
from huiyan.db import hotline as db
from huiyan.db.models import HotlineCall, Organisation, OrgLevel
from huiyan.hotline.service import HotlineService, MenuChoice
from huiyan.hotline.store import DbHotlineStore


async def test_a_transfer_into_a_queue_keeps_the_first_menu_key(db_sessions: sessionmaker[Session]) -> None:
    with db_sessions() as s:
        org = Organisation(name="吉林省司法厅", code="220000", level=OrgLevel.PROVINCE)
        s.add(org)
        s.flush()
        q = db.create_queue(s, name="法律咨询", organisation_id=org.id)
        db.create_menu_option(s, service_number="12348", digit="1", queue_id=q.id, label_zh="法律咨询")
        s.commit()
        qid = str(q.id)
    svc = HotlineService("pbx1", DbHotlineStore(db_sessions, 0.0), EventBus())
    await svc.start()
    try:
        first = MenuChoice("1", qid, {}, label_zh="法律咨询", label_en="Legal consultation")
        svc.enqueue("pbx1-1.1", first, channel="PJSIP/80001-1", caller="80001", caller_name="", number="12348")
        # ... later transferred back into the queue by an agent (Q<id>: no menu, no key)
        svc.transfer_out("pbx1-1.1", f"queue:{qid}")
        again = MenuChoice("", qid, {})
        res, _ = svc.enqueue("pbx1-1.1", again, channel="PJSIP/80001-1", caller="80001", caller_name="",
                             number="Q" + qid)
        assert res.accepted or res.reason  # either way the row must be written
        for _ in range(50):
            await asyncio.sleep(0.05)
            with db_sessions() as s:
                row = s.get(HotlineCall, "pbx1-1.1")
                if row is not None and row.service_number == "Q" + qid:
                    break
        with db_sessions() as s:
            row = s.get(HotlineCall, "pbx1-1.1")
            assert row is not None and row.service_number == "Q" + qid, "the re-queued call was not written"
            assert row.menu_digit == "1"
    finally:
        await svc.stop()
