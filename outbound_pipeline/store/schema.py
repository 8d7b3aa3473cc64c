"""DuckDB tables: the contract BI tools and every stage rely on.

Timestamps are UTC (`TIMESTAMP` without zone, always UTC). JSON values are
stored as VARCHAR holding JSON text so any BI tool can read them.
"""

from __future__ import annotations

TABLES: dict[str, str] = {
    "leads": """
        lead_id       VARCHAR PRIMARY KEY,   -- stable hash of the lead's email, else phone
        source_list   VARCHAR NOT NULL,      -- file name of the lead list it came from
        source_line   INTEGER NOT NULL,      -- 1-based line in that file (header is line 1)
        first_name    VARCHAR NOT NULL,
        last_name     VARCHAR,
        email         VARCHAR,               -- normalised, validated (no DNS)
        phone         VARCHAR,               -- E.164
        company       VARCHAR,
        role          VARCHAR,
        country       VARCHAR,               -- ISO 3166 alpha-2
        timezone      VARCHAR,               -- IANA zone, from the file or inferred from the phone
        owner_email   VARCHAR,               -- who hears about replies
        custom_vars   VARCHAR NOT NULL,      -- JSON object of columns beyond the known ones
        status        VARCHAR NOT NULL,      -- active | invalid (hard bounce, complaint, invalid number) | opted_out
        status_reason VARCHAR,
        imported_at   TIMESTAMP NOT NULL,
        phone_valid   BOOLEAN                -- the phone is a number phonenumbers knows as assigned (FALSE: possible only, e.g. 555)
    """,
    "lead_rejects": """
        source_list   VARCHAR NOT NULL,
        line_number   INTEGER NOT NULL,
        reason        VARCHAR NOT NULL,
        raw           VARCHAR NOT NULL,      -- the row as read, JSON
        imported_at   TIMESTAMP NOT NULL,
        kind          VARCHAR,               -- rejected (not imported) | skipped (duplicate) | warning (imported, a field left out); NULL: rejected
        PRIMARY KEY (source_list, line_number)
    """,
    "list_members": """
        list_name     VARCHAR NOT NULL,      -- a contact list (`outbound contacts import FILE --list NAME`, or a campaign's lead_list file name)
        lead_id       VARCHAR NOT NULL,
        source_file   VARCHAR NOT NULL,      -- the file that added the contact to the list
        line          INTEGER NOT NULL,      -- its line in that file
        added_at      TIMESTAMP NOT NULL,
        PRIMARY KEY (list_name, lead_id)
    """,
    "campaigns": """
        campaign_id   VARCHAR PRIMARY KEY,
        goal          VARCHAR NOT NULL,
        type          VARCHAR NOT NULL,      -- drip | oneshot | followup
        approval_mode VARCHAR NOT NULL,      -- manual | batch | auto
        lead_list     VARCHAR NOT NULL,
        n_touches     INTEGER NOT NULL,
        spec          VARCHAR NOT NULL,      -- the validated YAML spec, JSON
        spec_hash     VARCHAR NOT NULL,
        status        VARCHAR NOT NULL,      -- running | paused | completed | stopped
        status_reason VARCHAR,
        launched_at   TIMESTAMP NOT NULL,
        updated_at    TIMESTAMP NOT NULL
    """,
    "recipients": """
        campaign_id   VARCHAR NOT NULL,
        lead_id       VARCHAR NOT NULL,
        status        VARCHAR NOT NULL,      -- active | replied | paused | completed
        status_reason VARCHAR,
        variant       VARCHAR,
        added_at      TIMESTAMP NOT NULL,
        updated_at    TIMESTAMP NOT NULL,
        PRIMARY KEY (campaign_id, lead_id)
    """,
    "research_snippets": """
        campaign_id    VARCHAR NOT NULL,
        lead_id        VARCHAR NOT NULL,
        snippet_id     VARCHAR NOT NULL,
        rank           INTEGER NOT NULL,
        source_url     VARCHAR NOT NULL,
        title          VARCHAR NOT NULL,
        text           VARCHAR NOT NULL,
        published_date VARCHAR,
        score          DOUBLE,
        query          VARCHAR NOT NULL,
        provider       VARCHAR NOT NULL,
        cost_usd       DOUBLE NOT NULL,      -- the lead's research cost, on its rank-1 row
        retrieved_at   TIMESTAMP NOT NULL,
        PRIMARY KEY (campaign_id, lead_id, snippet_id)
    """,
    "drafts": """
        draft_id          VARCHAR PRIMARY KEY,  -- hash of campaign, touch, lead
        campaign_id       VARCHAR NOT NULL,
        touch             INTEGER NOT NULL,     -- the step's position (1-based); 0 for answers to replies
        lead_id           VARCHAR NOT NULL,
        channel           VARCHAR NOT NULL,     -- email | whatsapp | sms
        tone              VARCHAR NOT NULL,
        cta               VARCHAR NOT NULL,
        subject           VARCHAR,
        body              VARCHAR NOT NULL,
        cited_snippet_ids VARCHAR NOT NULL,     -- JSON list, at least one id
        composer          VARCHAR NOT NULL,
        flags             VARCHAR NOT NULL,     -- JSON list of reviewer warnings
        cost_usd          DOUBLE NOT NULL,
        created_at        TIMESTAMP NOT NULL,
        reply_id          VARCHAR               -- answer drafts (touch 0, reply_mode ai): the reply answered; cites it
    """,
    "approvals": """
        approval_id    VARCHAR PRIMARY KEY,
        draft_id       VARCHAR NOT NULL UNIQUE, -- one decision per draft
        campaign_id    VARCHAR NOT NULL,
        touch          INTEGER NOT NULL,
        decision       VARCHAR NOT NULL,        -- approved | edited | rejected
        mode           VARCHAR NOT NULL,        -- auto | manual | batch
        reviewer       VARCHAR NOT NULL,
        original_body  VARCHAR NOT NULL,
        final_subject  VARCHAR,
        final_body     VARCHAR,                 -- NULL when rejected
        note           VARCHAR,
        decided_at     TIMESTAMP NOT NULL
    """,
    "sends": """
        send_id             VARCHAR PRIMARY KEY, -- also the provider idempotency key
        draft_id            VARCHAR NOT NULL UNIQUE,
        campaign_id         VARCHAR NOT NULL,
        touch               INTEGER NOT NULL,
        lead_id             VARCHAR NOT NULL,
        channel             VARCHAR NOT NULL,
        to_address          VARCHAR NOT NULL,
        subject             VARCHAR,
        body                VARCHAR NOT NULL,
        status              VARCHAR NOT NULL,    -- pending | sending | sent | failed | suppressed
        provider            VARCHAR,
        provider_message_id VARCHAR,
        message_id          VARCHAR,             -- the RFC 5322 Message-ID we set on an email (replies thread to it)
        error_code          VARCHAR,
        error_message       VARCHAR,
        segments            INTEGER,
        cost_usd            DOUBLE NOT NULL,
        attempts            INTEGER NOT NULL,
        retries             INTEGER,             -- times the campaign's retry policy re-queued it (NULL: never)
        recorded_at         TIMESTAMP NOT NULL,  -- outbox row written, before any provider call
        sent_at             TIMESTAMP,           -- provider accepted it (pipeline clock)
        updated_at          TIMESTAMP NOT NULL
    """,
    "delivery_events": """
        event_id      VARCHAR PRIMARY KEY,     -- provider event id, or a stable hash
        send_id       VARCHAR,
        campaign_id   VARCHAR,
        touch         INTEGER,
        lead_id       VARCHAR,
        channel       VARCHAR NOT NULL,
        event_type    VARCHAR NOT NULL,        -- sent | delivered | opened | read | clicked | bounced | complained | opted_out | failed
        occurred_at   TIMESTAMP NOT NULL,
        provider      VARCHAR NOT NULL,
        detail        VARCHAR,
        ingested_at   TIMESTAMP NOT NULL
    """,
    "replies": """
        reply_id      VARCHAR PRIMARY KEY,     -- provider message id, or a stable hash
        send_id       VARCHAR,                 -- NULL when unattributed
        campaign_id   VARCHAR,
        touch         INTEGER,
        lead_id       VARCHAR,
        channel       VARCHAR NOT NULL,
        from_address  VARCHAR NOT NULL,
        body          VARCHAR NOT NULL,
        intent        VARCHAR NOT NULL,        -- interested | question | not_now | not_interested | opt_out | out_of_office | auto_reply | unknown
        received_at   TIMESTAMP NOT NULL,
        provider      VARCHAR NOT NULL,
        ingested_at   TIMESTAMP NOT NULL,
        thread_refs   VARCHAR,                 -- JSON list of Message-IDs from In-Reply-To/References (email)
        attribution   VARCHAR,                 -- how send_id was found: send | provider_message_id | thread | sender_address | number_72h | none
        message_id    VARCHAR                  -- the reply's own RFC 5322 Message-ID (email): an answer threads to it
    """,
    "notifications": """
        notification_id VARCHAR PRIMARY KEY,
        reply_id        VARCHAR NOT NULL,
        campaign_id     VARCHAR,
        lead_id         VARCHAR,
        owner_email     VARCHAR,
        kind            VARCHAR NOT NULL,      -- reply
        message         VARCHAR NOT NULL,
        created_at      TIMESTAMP NOT NULL,
        emailed_at      TIMESTAMP              -- when the owner was also emailed (email provider configured)
    """,
    "suppressions": """
        suppression_id  VARCHAR PRIMARY KEY,   -- hash of lead (or address) and channel: one row each
        lead_id         VARCHAR,               -- NULL when the address matches no lead
        address         VARCHAR,               -- email or E.164 phone
        channel         VARCHAR NOT NULL,      -- all | email | whatsapp | sms
        reason          VARCHAR NOT NULL,      -- opt_out | unsubscribe_link | complaint | hard_bounce | invalid_number
        source          VARCHAR NOT NULL,      -- the reply or event id that caused it
        created_at      TIMESTAMP NOT NULL
    """,
    "tickets": """
        ticket_id       VARCHAR PRIMARY KEY,
        reply_id        VARCHAR NOT NULL UNIQUE,
        campaign_id     VARCHAR,
        lead_id         VARCHAR,
        owner_email     VARCHAR,
        status          VARCHAR NOT NULL,      -- open | closed
        summary         VARCHAR NOT NULL,
        context         VARCHAR NOT NULL,      -- JSON: campaign goal, touch, channel, intent, what we sent, the reply
        created_at      TIMESTAMP NOT NULL,
        closed_at       TIMESTAMP,             -- when it was closed (`outbound tickets close`)
        closed_by       VARCHAR,               -- who closed it
        close_note      VARCHAR                -- what was done about it
    """,
    "inbound_windows": """
        lead_id         VARCHAR PRIMARY KEY,
        last_inbound_at TIMESTAMP NOT NULL,    -- the lead's last inbound WhatsApp message: opens the 24-hour window
        reply_id        VARCHAR NOT NULL,
        updated_at      TIMESTAMP NOT NULL
    """,
    "campaign_events": """
        event_id      VARCHAR PRIMARY KEY,     -- hash of campaign, transition and time
        campaign_id   VARCHAR NOT NULL,
        from_status   VARCHAR,                 -- NULL when the campaign is created
        to_status     VARCHAR NOT NULL,        -- draft | scheduled | running | paused | completed | stopped
        reason        VARCHAR,
        actor         VARCHAR NOT NULL,        -- cli | pipeline | schedule
        scheduled_for TIMESTAMP,               -- launch time of a scheduled launch (UTC)
        occurred_at   TIMESTAMP NOT NULL,
        seq           INTEGER                  -- 1, 2, ... per campaign: the order of transitions made at the same instant
    """,
    "recipient_steps": """
        campaign_id   VARCHAR NOT NULL,
        lead_id       VARCHAR NOT NULL,
        seq           INTEGER NOT NULL,        -- 1 for the entry step, then each step taken
        touch         INTEGER NOT NULL,        -- the step's position in the spec (its touch partition)
        step          VARCHAR NOT NULL,
        variant       VARCHAR,                 -- A/B variant assigned for this step
        via           VARCHAR NOT NULL,        -- entry | next | the branch condition that led here
        entered_at    TIMESTAMP NOT NULL,
        PRIMARY KEY (campaign_id, lead_id, touch)
    """,
    "test_sends": """
        test_send_id        VARCHAR PRIMARY KEY,
        campaign_id         VARCHAR NOT NULL,
        step                VARCHAR NOT NULL,
        channel             VARCHAR NOT NULL,
        to_address          VARCHAR NOT NULL,
        subject             VARCHAR,
        body                VARCHAR NOT NULL,
        status              VARCHAR NOT NULL,  -- sent | failed
        provider            VARCHAR NOT NULL,
        provider_message_id VARCHAR,
        error_message       VARCHAR,
        sent_at             TIMESTAMP NOT NULL
    """,
    "variant_metrics": """
        campaign_id     VARCHAR NOT NULL,
        touch           INTEGER NOT NULL,
        step            VARCHAR NOT NULL,
        variant         VARCHAR NOT NULL,
        leads           BIGINT NOT NULL,
        sent            BIGINT NOT NULL,
        delivered       BIGINT NOT NULL,
        opened          BIGINT NOT NULL,
        replied         BIGINT NOT NULL,
        replied_to_cta  BIGINT NOT NULL,
        reply_rate      DOUBLE,
        reply_to_cta_rate DOUBLE,
        computed_at     TIMESTAMP NOT NULL,
        PRIMARY KEY (campaign_id, touch, variant)
    """,
    "funnel_metrics": """
        campaign_id     VARCHAR NOT NULL,
        touch           INTEGER NOT NULL,
        step            VARCHAR NOT NULL,
        previous_steps  VARCHAR,               -- the steps leads come here from (', '-separated); NULL for an entry step
        entered         BIGINT NOT NULL,       -- recipients who entered the step (a draft was written for them)
        sent            BIGINT NOT NULL,
        delivered       BIGINT NOT NULL,
        engaged         BIGINT NOT NULL,       -- opened, clicked or read
        replied         BIGINT NOT NULL,
        previous_entered BIGINT,               -- recipients of the previous step(s)
        dropped         BIGINT,                -- of those, how many did not reach this step
        dropoff_rate    DOUBLE,                -- dropped / previous_entered
        computed_at     TIMESTAMP NOT NULL,
        waiting         BIGINT,                -- recipients of the previous step(s) whose time for this step has not come yet
        PRIMARY KEY (campaign_id, touch)
    """,
    "campaign_metrics": """
        campaign_id     VARCHAR NOT NULL,
        touch           INTEGER NOT NULL,      -- 0 is the whole campaign
        sent            BIGINT NOT NULL,
        delivered       BIGINT NOT NULL,
        failed          BIGINT NOT NULL,
        bounced         BIGINT NOT NULL,
        opened          BIGINT NOT NULL,
        read            BIGINT NOT NULL,
        replied         BIGINT NOT NULL,
        replied_to_cta  BIGINT NOT NULL,
        opted_out       BIGINT NOT NULL,
        delivery_rate   DOUBLE,
        open_rate       DOUBLE,
        read_rate       DOUBLE,
        reply_rate      DOUBLE,
        reply_to_cta_rate DOUBLE,
        opt_out_rate    DOUBLE,
        bounce_rate     DOUBLE,
        cost_usd        DECIMAL(18,6) NOT NULL,  -- money as DECIMAL: providers, tokens, research
        computed_at     TIMESTAMP NOT NULL,
        answers_sent    BIGINT,                -- whole-campaign row: answers to replies sent (not a step, not in the rates)
        queued          BIGINT,                -- messages built and waiting to go out
        clicked         BIGINT,                -- leads who clicked a link in an email
        complained      BIGINT,                -- emails marked as spam
        converted       BIGINT,                -- leads with an accepted call to action or a recorded conversion
        leads_reached   BIGINT,                -- leads with a message delivered (or answered)
        emails_sent     BIGINT,
        emails_delivered BIGINT,
        emails_bounced  BIGINT,
        whatsapp_delivered BIGINT,
        click_rate      DOUBLE,
        complaint_rate  DOUBLE,
        conversion_rate DOUBLE,
        response_median_s DOUBLE,              -- seconds from a lead's send to their first reply: median
        response_p90_s  DOUBLE,                -- and 90th percentile
        cost_per_reply_usd DECIMAL(18,6),
        cost_per_conversion_usd DECIMAL(18,6),
        human_opened    BIGINT,                -- emails opened by a person: machine opens (proxies, seconds after delivery) left out
        human_open_rate DOUBLE,                -- human_opened / emails_delivered
        PRIMARY KEY (campaign_id, touch)
    """,
    "metrics_daily": """
        day             DATE NOT NULL,         -- counted as of the end of this day (UTC), or of the run for today
        campaign_id     VARCHAR NOT NULL,
        touch           INTEGER NOT NULL,      -- 0: every step
        channel         VARCHAR NOT NULL,      -- all | email | whatsapp | sms
        variant         VARCHAR NOT NULL,      -- all | the A/B variant of the step
        sent            BIGINT NOT NULL,
        delivered       BIGINT NOT NULL,
        failed          BIGINT NOT NULL,
        bounced         BIGINT NOT NULL,
        opened          BIGINT NOT NULL,
        read            BIGINT NOT NULL,
        replied         BIGINT NOT NULL,       -- leads who replied
        replied_to_cta  BIGINT NOT NULL,       -- leads whose reply accepted the call to action
        opted_out       BIGINT NOT NULL,       -- leads who opted out
        delivery_rate   DOUBLE,
        open_rate       DOUBLE,
        read_rate       DOUBLE,
        reply_rate      DOUBLE,
        reply_to_cta_rate DOUBLE,
        opt_out_rate    DOUBLE,
        bounce_rate     DOUBLE,
        cost_usd        DECIMAL(18,6) NOT NULL,
        computed_at     TIMESTAMP NOT NULL,    -- the moment counted up to
        answers_sent    BIGINT,
        queued          BIGINT,                -- messages built and waiting to go out
        clicked         BIGINT,                -- leads who clicked a link in an email
        complained      BIGINT,                -- emails marked as spam
        converted       BIGINT,                -- leads with an accepted call to action or a recorded conversion
        leads_reached   BIGINT,                -- leads with a message delivered (or answered)
        emails_sent     BIGINT,
        emails_delivered BIGINT,
        emails_bounced  BIGINT,
        whatsapp_delivered BIGINT,
        click_rate      DOUBLE,
        complaint_rate  DOUBLE,
        conversion_rate DOUBLE,
        response_median_s DOUBLE,              -- seconds from a lead's send to their first reply: median
        response_p90_s  DOUBLE,                -- and 90th percentile
        cost_per_reply_usd DECIMAL(18,6),
        cost_per_conversion_usd DECIMAL(18,6),
        human_opened    BIGINT,                -- emails opened by a person: machine opens (proxies, seconds after delivery) left out
        human_open_rate DOUBLE,                -- human_opened / emails_delivered
        PRIMARY KEY (day, campaign_id, touch, channel, variant)
    """,
    "alerts": """
        alert_id        VARCHAR PRIMARY KEY,   -- hash of campaign, metric and day: raised at most once a day while it lasts
        campaign_id     VARCHAR NOT NULL,
        metric          VARCHAR NOT NULL,      -- complaint_rate | opt_out_rate | bounce_rate | failure_rate | delivery_drop
        value           DOUBLE NOT NULL,
        threshold       DOUBLE NOT NULL,
        message         VARCHAR NOT NULL,
        owner_email     VARCHAR,               -- the campaign's owner, who is notified
        raised_at       TIMESTAMP NOT NULL,
        emailed_at      TIMESTAMP              -- when the owner was also emailed (email provider configured)
    """,
    "send_facts": """
        draft_id        VARCHAR PRIMARY KEY,   -- one row per draft of a campaign step (touch > 0), with its send
        campaign_id     VARCHAR NOT NULL,
        touch           INTEGER NOT NULL,
        lead_id         VARCHAR NOT NULL,
        draft_channel   VARCHAR NOT NULL,
        draft_cost      DECIMAL(18,6) NOT NULL,
        drafted_at      TIMESTAMP NOT NULL,
        variant         VARCHAR,               -- the step's A/B variant (recipient_steps), known from entered_at
        step            VARCHAR,
        entered_at      TIMESTAMP,
        send_id         VARCHAR,               -- NULL until the outbox queued it
        channel         VARCHAR,
        status          VARCHAR,
        send_cost       DECIMAL(18,6),
        recorded_at     TIMESTAMP,
        sent_at         TIMESTAMP,
        updated_at      TIMESTAMP,
        delivered_at    TIMESTAMP,             -- when each fact first became true (store/views.py, domain/funnel.py)
        opened_at       TIMESTAMP,
        human_opened_at TIMESTAMP,
        read_at         TIMESTAMP,
        clicked_at      TIMESTAMP,
        bounced_at      TIMESTAMP,
        failed_at       TIMESTAMP,
        complained_at   TIMESTAMP,
        opted_out_at    TIMESTAMP,             -- an opt-out event
        answered_at     TIMESTAMP,             -- any reply, even one asking to stop (proves the message arrived)
        replied_at      TIMESTAMP,             -- the first reply that counts as a reply
        cta_at          TIMESTAMP,             -- the first reply accepting the call to action
        opt_out_reply_at TIMESTAMP,            -- the first reply asking to stop
        converted_at    TIMESTAMP              -- the first conversion recorded for this message
    """,
    "send_facts_folds": """
        source          VARCHAR PRIMARY KEY,   -- a table folded into send_facts
        folded_to       TIMESTAMP NOT NULL,    -- its newest stamp folded so far
        row_count       BIGINT NOT NULL        -- its rows then (more rows stamped earlier: the facts are rebuilt)
    """,
    "conversions": """
        conversion_id   VARCHAR PRIMARY KEY,   -- the caller's id: recording it twice keeps one row
        campaign_id     VARCHAR NOT NULL,
        lead_id         VARCHAR NOT NULL,
        kind            VARCHAR NOT NULL,      -- e.g. meeting_booked, signed_up, purchase
        value_usd       DECIMAL(18,6),
        occurred_at     TIMESTAMP NOT NULL,
        source          VARCHAR NOT NULL,      -- the system that reported it
        recorded_at     TIMESTAMP NOT NULL
    """,
    "api_keys": """
        key_id          VARCHAR PRIMARY KEY,   -- public part of the key, shown in listings
        name            VARCHAR NOT NULL UNIQUE, -- who holds it: recorded on every change made with it
        role            VARCHAR NOT NULL,      -- api (REST API and pages) | reviewer (review inbox and campaign pages)
        key_hash        VARCHAR NOT NULL,      -- SHA-256 of the whole key; the key itself is never stored
        created_at      TIMESTAMP NOT NULL,
        revoked_at      TIMESTAMP
    """,
    "api_audit": """
        audit_id        VARCHAR PRIMARY KEY,
        key_name        VARCHAR NOT NULL,      -- the API key (or signed-in reviewer) that asked
        method          VARCHAR NOT NULL,
        path            VARCHAR NOT NULL,
        campaign_id     VARCHAR,
        action          VARCHAR NOT NULL,      -- create | update | upload | launch | pause | resume | stop | duplicate | ...
        status_code     INTEGER NOT NULL,      -- what the request was answered
        detail          VARCHAR,               -- what changed, or why it was refused
        occurred_at     TIMESTAMP NOT NULL
    """,
    "api_campaigns": """
        campaign_id     VARCHAR PRIMARY KEY,   -- the campaign (and its YAML file) the API created
        name            VARCHAR NOT NULL,      -- the name the caller gave
        channel         VARCHAR NOT NULL,      -- voice | sms | whatsapp | email
        settings        VARCHAR NOT NULL,      -- JSON: the request's fields as last set (agent, numbers, template, limits)
        created_by      VARCHAR NOT NULL,      -- API key name
        created_at      TIMESTAMP NOT NULL,
        updated_at      TIMESTAMP NOT NULL
    """,
    "call_contacts": """
        campaign_id     VARCHAR NOT NULL,
        lead_id         VARCHAR NOT NULL,
        seq             INTEGER NOT NULL,      -- first in, first out: the contact's place in the campaign's list
        phone           VARCHAR,               -- E.164; NULL: the contact cannot be called (status failed)
        timezone        VARCHAR,               -- calling hours are in this zone
        status          VARCHAR NOT NULL,      -- pending | calling | completed | failed | no_answer | voicemail
        attempts        INTEGER NOT NULL,      -- calls placed so far
        queued_at       TIMESTAMP NOT NULL,
        next_attempt_at TIMESTAMP,             -- failed / no_answer with a retry left: dialled again from then
        last_call_id    VARCHAR,
        duration_s      INTEGER,               -- of the last call
        outcome         VARCHAR,               -- the agent's: interested | call_back_later | not_interested | wrong_person | do_not_call
        error_message   VARCHAR,
        updated_at      TIMESTAMP NOT NULL,
        PRIMARY KEY (campaign_id, lead_id)
    """,
    "calls": """
        call_id         VARCHAR PRIMARY KEY,   -- hash of campaign, lead and attempt
        campaign_id     VARCHAR NOT NULL,
        lead_id         VARCHAR NOT NULL,
        attempt         INTEGER NOT NULL,      -- 1 for the first call to the contact
        provider        VARCHAR NOT NULL,      -- twilio | offline
        provider_sid    VARCHAR,               -- CA... (NULL until the provider accepted the call)
        from_number     VARCHAR NOT NULL,
        to_number       VARCHAR NOT NULL,
        status          VARCHAR NOT NULL,      -- calling | completed | failed | no_answer | voicemail
        provider_status VARCHAR,               -- the provider's last CallStatus
        answered_by     VARCHAR,               -- human | machine_* | fax | unknown (answering-machine detection)
        placed_at       TIMESTAMP NOT NULL,
        answered_at     TIMESTAMP,
        ended_at        TIMESTAMP,
        duration_s      INTEGER,
        billed_minutes  INTEGER,
        cost_usd        DECIMAL(18,6),
        outcome         VARCHAR,
        summary         VARCHAR,
        voicemail_left  BOOLEAN,
        error_message   VARCHAR,
        updated_at      TIMESTAMP NOT NULL
    """,
    "call_turns": """
        call_id         VARCHAR NOT NULL,
        seq             INTEGER NOT NULL,      -- order of the turn in the call
        role            VARCHAR NOT NULL,      -- agent | callee | system
        text            VARCHAR NOT NULL,
        spoken_at       TIMESTAMP,
        PRIMARY KEY (call_id, seq)
    """,
    "call_metrics": """
        campaign_id     VARCHAR PRIMARY KEY,
        contacts        INTEGER NOT NULL,
        calls_placed    INTEGER NOT NULL,
        answered_human  INTEGER NOT NULL,
        voicemail       INTEGER NOT NULL,
        no_answer       INTEGER NOT NULL,
        failed          INTEGER NOT NULL,
        avg_duration_s  DOUBLE,
        billed_minutes  INTEGER NOT NULL,
        cost_usd        DECIMAL(18,6) NOT NULL,
        cost_per_minute DECIMAL(18,6),
        outcomes        VARCHAR NOT NULL,      -- JSON object: outcome -> calls
        updated_at      TIMESTAMP NOT NULL
    """,
    "dial_cursor": """
        name            VARCHAR PRIMARY KEY,   -- voice_landing: how far the dial step has read the landed call callbacks
        position        VARCHAR,
        updated_at      TIMESTAMP NOT NULL
    """,
}


def column_specs(table: str) -> list[tuple[str, str, bool]]:
    """(name, SQL type, nullable) of each column of a table, read from its definition."""
    specs = []
    for line in TABLES[table].strip().splitlines():
        line = line.split("--")[0].strip().rstrip(",")
        if not line or line.upper().startswith(("PRIMARY KEY", "UNIQUE")):
            continue
        name, sql_type = line.split()[:2]
        nullable = "NOT NULL" not in line.upper() and "PRIMARY KEY" not in line.upper()
        specs.append((name, sql_type.upper(), nullable))
    return specs


def columns(table: str) -> list[str]:
    """Column names of a table, in order."""
    return [name for name, _, _ in column_specs(table)]
