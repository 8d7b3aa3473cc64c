"""The landing area: durable appends, hourly files, cursor reads, and shaping into warehouse rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from outbound_pipeline.engine.landed import EVENT_COLUMNS, WEBHOOK_REPLY_COLUMNS, to_frames
from outbound_pipeline.providers import twilio_payloads
from outbound_pipeline.store import landing
from outbound_pipeline.store.validation import validate

T0 = datetime(2026, 11, 23, 17, 5, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def _clock(moment: datetime):
    return lambda: moment


def _status(sid: str, status: str, to: str = "+15551230000", **extra: str) -> dict:
    return landing.make_record("twilio_status", f"{sid}:{status}", {"MessageSid": sid, "MessageStatus": status, "To": to, **extra})


def _resend(msg_id: str, kind: str, email_id: str = "e-1", tags=None, **data) -> dict:
    payload = {"type": kind, "created_at": "2026-11-23T17:01:02.500Z", "data": {"email_id": email_id, **data}}
    if tags is not None:
        payload["data"]["tags"] = tags
    return landing.make_record("resend", msg_id, payload)


# --------------------------------------------------------------------------- appending


def test_append_fsyncs_file_and_new_directory_entry_and_leaves_complete_json(tmp_path: Path, monkeypatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else str(fd))
        real_fsync(fd)

    monkeypatch.setattr(landing.os, "fsync", spy)
    stored = landing.append(_status("SM1", "delivered"), tmp_path, clock=_clock(T0))

    path = tmp_path / "events-2026112317.jsonl"
    assert synced == [str(path), str(tmp_path)]  # the file, then the directory (new file)
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert json.loads(raw) == stored
    assert stored["received_at"] == T0.isoformat()
    assert stored["landing_id"] == "SM1:delivered" and stored["source"] == "twilio_status"

    synced.clear()
    landing.append(_status("SM1", "read"), tmp_path, clock=_clock(T0 + timedelta(minutes=1)))
    assert synced == [str(path)]  # existing file: no directory fsync needed
    assert [json.loads(line)["landing_id"] for line in path.read_text().splitlines()] == ["SM1:delivered", "SM1:read"]


def test_append_creates_the_directory_and_refuses_malformed_records(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "landing"
    landing.append(_status("SM1", "sent"), target, clock=_clock(T0))
    assert landing.landed_files(target) == ["events-2026112317.jsonl"]
    with pytest.raises(ValueError):
        landing.append(landing.make_record("carrier_pigeon", "x", {}), target)
    with pytest.raises(ValueError):
        landing.append(landing.make_record("resend", "", {}), target)


def test_files_rotate_by_utc_hour(tmp_path: Path) -> None:
    cet = datetime(2026, 11, 23, 19, 59, 59, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Madrid"))
    landing.append(_status("SM1", "sent"), tmp_path, clock=lambda: cet)
    landing.append(_status("SM1", "delivered"), tmp_path, clock=_clock(datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC)))
    assert landing.landed_files(tmp_path) == ["events-2026112319.jsonl", "events-2026112320.jsonl"]
    records, _ = landing.read_since(None, tmp_path)
    assert [r["received_at"] for r in records] == ["2026-11-23T19:59:59+00:00", "2026-11-23T20:00:00+00:00"]


def test_concurrent_processes_never_interleave_lines(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from outbound_pipeline.store import landing
        for i in range(150):
            landing.append(landing.make_record("resend", f"{{sys.argv[1]}}-{{i}}", {{"pad": "x" * 5000}}), Path({str(tmp_path)!r}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", script, f"p{n}"], env=env) for n in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    records, _ = landing.read_since(None, tmp_path)
    assert len(records) == 600
    assert len({r["landing_id"] for r in records}) == 600


# --------------------------------------------------------------------------- reading


def test_read_since_returns_only_new_records_and_waits_for_a_half_written_line(tmp_path: Path) -> None:
    assert landing.read_since(None, tmp_path) == ([], None)
    landing.append(_status("SM1", "sent"), tmp_path, clock=_clock(T0))
    landing.append(_status("SM1", "delivered"), tmp_path, clock=_clock(T0))
    first, cursor = landing.read_since(None, tmp_path)
    assert [r["landing_id"] for r in first] == ["SM1:sent", "SM1:delivered"]
    assert cursor == f"events-2026112317.jsonl:{(tmp_path / 'events-2026112317.jsonl').stat().st_size}"

    assert landing.read_since(cursor, tmp_path) == ([], cursor)  # nothing new

    path = tmp_path / "events-2026112317.jsonl"
    whole = json.dumps({**_status("SM1", "read"), "received_at": T0.isoformat()}) + "\n"
    with open(path, "a") as fh:  # a writer caught mid-line
        fh.write(whole[:25])
    again, cursor2 = landing.read_since(cursor, tmp_path)
    assert again == [] and cursor2 == cursor

    with open(path, "a") as fh:  # the writer finishes its line
        fh.write(whole[25:])
    landing.append(_status("SM2", "failed"), tmp_path, clock=_clock(T0 + timedelta(hours=1)))
    later, cursor3 = landing.read_since(cursor2, tmp_path)
    assert [r["landing_id"] for r in later] == ["SM1:read", "SM2:failed"]
    assert cursor3.startswith("events-2026112318.jsonl:")
    assert landing.read_since(cursor3, tmp_path) == ([], cursor3)


def test_read_since_honours_limit_and_resumes(tmp_path: Path) -> None:
    for i in range(5):
        landing.append(_status(f"SM{i}", "sent"), tmp_path, clock=_clock(T0))
    seen, cursor = [], None
    while True:
        batch, cursor = landing.read_since(cursor, tmp_path, limit=2)
        if not batch:
            break
        assert len(batch) <= 2
        seen += [r["landing_id"] for r in batch]
    assert seen == [f"SM{i}:sent" for i in range(5)]


def test_a_crashed_writers_fragment_is_skipped_not_fatal(tmp_path: Path) -> None:
    old = tmp_path / "events-2026112316.jsonl"
    old.write_text(json.dumps({**_status("SM0", "sent"), "received_at": "x"}) + "\n" + '{"landing_id": "torn')
    landing.append(_status("SM1", "sent"), tmp_path, clock=_clock(T0))
    (tmp_path / "events-2026112317.jsonl").open("a").write('{"half')  # crash in the newest file
    landing.append(_status("SM2", "sent"), tmp_path, clock=_clock(T0))  # starts on a fresh line
    records, cursor = landing.read_since(None, tmp_path)
    assert [r["landing_id"] for r in records] == ["SM0:sent", "SM1:sent", "SM2:sent"]
    assert cursor.startswith("events-2026112317.jsonl:")


def test_a_malformed_cursor_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        landing.read_since("somewhere:12", tmp_path)


def test_a_cursor_into_a_removed_file_moves_on_to_later_files(tmp_path: Path) -> None:
    landing.append(_status("SM1", "sent"), tmp_path, clock=_clock(T0))
    records, _ = landing.read_since("events-2026112301.jsonl:999", tmp_path)
    assert [r["landing_id"] for r in records] == ["SM1:sent"]


# --------------------------------------------------------------------------- shaping


def _with_ingested(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(ingested_at=pd.Timestamp("2026-11-23 18:00:00"))


def test_twilio_statuses_become_delivery_events(tmp_path: Path) -> None:
    for rec in [
        _status("SM1", "queued"),
        _status("SM1", "sent"),
        _status("SM1", "delivered"),
        _status("SM2", "read", to="whatsapp:+15551230001"),
        _status("SM3", "undelivered", ErrorCode="30007"),
        _status("SM4", "failed", ErrorCode="63016", To="whatsapp:+15551230002"),
    ]:
        landing.append(rec, tmp_path, clock=_clock(T0))
    events, replies = to_frames(landing.read_since(None, tmp_path)[0])
    assert list(events.columns) == EVENT_COLUMNS and replies.empty
    assert list(events["event_type"]) == ["sent", "delivered", "read", "undelivered", "failed"]
    assert list(events["channel"]) == ["sms", "sms", "whatsapp", "sms", "whatsapp"]
    assert events["event_id"].iloc[1] == twilio_payloads.event_id("SM1", "delivered")
    assert set(events["provider"]) == {"twilio"}
    assert events["occurred_at"].iloc[0] == pd.Timestamp("2026-11-23 17:05:00")
    detail = json.loads(events["detail"].iloc[3])
    assert detail["provider_message_id"] == "SM3" and detail["error_code"] == "30007"
    validate("delivery_events", _with_ingested(events))


def test_send_id_from_the_signed_status_callback_query_is_kept() -> None:
    rec = {**_status("SM9", "delivered"), "query": {"send_id": "snd_abc"}, "received_at": T0.isoformat()}
    events, _ = to_frames([rec])
    assert events["send_id"].iloc[0] == "snd_abc"


def test_resend_events_map_types_tags_and_detail() -> None:
    kinds = {
        "email.sent": "sent",
        "email.delivered": "delivered",
        "email.delivery_delayed": "delivery_delayed",
        "email.opened": "opened",
        "email.clicked": "clicked",
        "email.bounced": "bounced",
        "email.complained": "complained",
        "email.failed": "failed",
    }
    records = [
        {**_resend(f"msg_{i}", kind, tags={"send_id": "snd_1", "campaign_id": "c1", "touch": "2"}), "received_at": T0.isoformat()}
        for i, kind in enumerate(kinds)
    ]
    records.append({**_resend("msg_x", "email.received"), "received_at": T0.isoformat()})  # not a delivery event
    records.append(
        {
            **_resend(
                "msg_b",
                "email.bounced",
                email_id="e-2",
                tags=[{"name": "send_id", "value": "snd_2"}],
                bounce={"type": "Permanent", "message": "no such user"},
            ),
            "received_at": T0.isoformat(),
        }
    )
    records.append(
        {**_resend("msg_c", "email.clicked", email_id="e-3", click={"link": "https://example.com/a"}), "received_at": T0.isoformat()}
    )
    events, _ = to_frames(records)
    assert list(events["event_type"]) == [*kinds.values(), "bounced", "clicked"]
    assert set(events["channel"]) == {"email"} and set(events["provider"]) == {"resend"}
    assert list(events["send_id"]) == ["snd_1"] * 8 + ["snd_2", None]
    assert events["touch"].iloc[0] == 2 and events["campaign_id"].iloc[0] == "c1"
    assert events["occurred_at"].iloc[0] == pd.Timestamp("2026-11-23 17:01:02.500")
    bounce = json.loads(events["detail"].iloc[8])
    assert bounce["provider_message_id"] == "e-2" and bounce["bounce_type"] == "Permanent"
    click = json.loads(events["detail"].iloc[9])
    assert click == {"landing_id": "msg_c", "link": "https://example.com/a", "provider_message_id": "e-3"}
    validate("delivery_events", _with_ingested(events))


def test_inbound_twilio_messages_become_unattributed_replies() -> None:
    records = [
        {
            **landing.make_record(
                "twilio_inbound",
                "SMin1",
                {"MessageSid": "SMin1", "From": "whatsapp:+34600111222", "To": "whatsapp:+15550000000", "Body": "Sí, hablemos"},
            ),
            "received_at": T0.isoformat(),
        },
        {
            **landing.make_record("twilio_inbound", "SMin2", {"MessageSid": "SMin2", "From": "+15551230000", "Body": "STOP"}),
            "received_at": T0.isoformat(),
        },
    ]
    events, replies = to_frames(records)
    assert events.empty and list(events.columns) == EVENT_COLUMNS
    assert list(replies.columns) == WEBHOOK_REPLY_COLUMNS
    assert list(replies["reply_id"]) == ["SMin1", "SMin2"]
    assert list(replies["from_address"]) == ["+34600111222", "+15551230000"]
    assert list(replies["channel"]) == ["whatsapp", "sms"]
    assert set(replies["intent"]) == {"unknown"} and replies["send_id"].isna().all()
    assert replies["body"].iloc[0] == "Sí, hablemos"
    validate("replies", _with_ingested(replies))


def test_a_redelivered_callback_lands_twice_but_becomes_one_row(tmp_path: Path) -> None:
    for _ in range(2):
        landing.append(_status("SM1", "delivered"), tmp_path, clock=_clock(T0))
        landing.append(_resend("msg_1", "email.opened"), tmp_path, clock=_clock(T0))
        landing.append(
            landing.make_record("twilio_inbound", "SMin", {"MessageSid": "SMin", "From": "+15551230000", "Body": "hi"}),
            tmp_path,
            clock=_clock(T0),
        )
    records, _ = landing.read_since(None, tmp_path)
    assert len(records) == 6
    events, replies = to_frames(records)
    assert len(events) == 2 and events["event_id"].is_unique
    assert len(replies) == 1


def test_dedupe_keeps_the_first_row_per_key() -> None:
    frame = pd.DataFrame({"event_id": ["a", "b", "a"], "n": [1, 2, 3]})
    assert landing.dedupe(frame, "event_id").to_dict("list") == {"event_id": ["a", "b"], "n": [1, 2]}


def test_unsubscribe_records_become_opted_out_events() -> None:
    rec = {
        **landing.make_record("unsubscribe", "snd_1", {"send_id": "snd_1", "channel": "email", "one_click": True}),
        "received_at": T0.isoformat(),
    }
    events, _ = to_frames([rec, rec])
    assert len(events) == 1
    row = events.iloc[0]
    assert (row["event_type"], row["send_id"], row["channel"]) == ("opted_out", "snd_1", "email")
    validate("delivery_events", _with_ingested(events))
