"""`outbound tickets list|close`: the owners' reply tickets, with who closed them and when."""

from __future__ import annotations

import pytest

from outbound_pipeline.cli.main import main
from tests.defs.s6_track.helpers import ANA, BEN, ingest_landed, later
from tests.defs.s6_track.test_reactions import _land, _reply, _rows, seeded  # noqa: F401  (fixture)


@pytest.fixture
def cli(capsys, monkeypatch):
    monkeypatch.setenv("OUTBOUND_NOW", later(10).isoformat())

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_tickets_are_listed_and_closed_with_who_and_when(seeded, driver, instance, db, cli):  # noqa: F811
    seeded()  # reply_mode human: one ticket per reply
    _land([_reply("SMa", "whatsapp", ANA["phone"], "Interesting, tell me more", later(5)),
           _reply("SMb", "sms", BEN["phone"], "Call me on Thursday", later(6))])
    ingest_landed(driver, instance, later(7))
    (ana_ticket,), (ben_ticket,) = _rows(db, "SELECT ticket_id FROM tickets ORDER BY lead_id")

    code, out, _ = cli("tickets", "list", "--campaign", "demo_drip")
    assert code == 0
    assert ana_ticket in out and ben_ticket in out and "2 tickets: 2 open, 0 closed" in out
    assert "Ana Ruiz (" in out and "whatsapp): Interesting, tell me more" in out

    code, out, _ = cli("tickets", "close", ana_ticket, "--by", "dana", "--note", "call booked for Tuesday")
    assert code == 0 and f"{ana_ticket}: closed by dana" in out
    assert _rows(db, f"SELECT status, closed_by, closed_at, close_note FROM tickets WHERE ticket_id = '{ana_ticket}'") == [
        ("closed", "dana", later(10), "call booked for Tuesday")]

    code, out, _ = cli("tickets", "list", "--open")
    assert code == 0 and ben_ticket in out and ana_ticket not in out and "1 tickets: 1 open, 0 closed" in out
    code, out, _ = cli("tickets", "list")
    assert "closed by dana at 2026-01-05 19:00:00: call booked for Tuesday" in out

    # Closing twice, or an unknown ticket, is refused and changes nothing.
    code, _, err = cli("tickets", "close", ana_ticket, "--by", "eve")
    assert code == 2 and "already closed (by dana" in err
    code, _, err = cli("tickets", "close", "tkt_nope", "--by", "eve")
    assert code == 2 and "no such ticket: tkt_nope" in err
    assert _rows(db, "SELECT closed_by FROM tickets ORDER BY lead_id") == [("dana",), (None,)]
    code, out, _ = cli("tickets", "list", "--campaign", "other")
    assert code == 0 and "No tickets for other." in out
