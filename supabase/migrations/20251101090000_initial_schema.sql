-- Initial schema of the product's data (the tables Story 6.3's load tests exercise).
--
-- user_id columns hold Supabase Auth user ids (auth.users.id). The foreign key to
-- auth.users is added only where the auth schema exists (on Supabase), so that the same
-- file also runs on a plain PostgreSQL such as orch's embedded `local` database.
--
-- Some of the story's performance indexes already exist here, several under other names
-- and some in forms that do not serve the plain need (partial, expression). `orch db
-- indexes` matches them by definition; `orch db plan` writes only what is missing.

CREATE TABLE IF NOT EXISTS public.campaigns (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL,
    name          text NOT NULL,
    status        text NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'active', 'paused', 'completed', 'archived')),
    daily_limit   integer NOT NULL DEFAULT 50 CHECK (daily_limit > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.prospects (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL,
    campaign_id     uuid REFERENCES public.campaigns (id) ON DELETE SET NULL,
    linkedin_url    text NOT NULL,
    full_name       text NOT NULL,
    company         text,
    title           text,
    email           text,
    status          text NOT NULL DEFAULT 'new'
                    CHECK (status IN ('new', 'enriched', 'contacted', 'replied',
                                      'meeting_booked', 'won', 'lost')),
    enrichment      jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, linkedin_url)
);

CREATE TABLE IF NOT EXISTS public.meetings (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL,
    prospect_id     uuid NOT NULL REFERENCES public.prospects (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'scheduled'
                    CHECK (status IN ('scheduled', 'completed', 'cancelled', 'no_show')),
    scheduled_at    timestamptz NOT NULL,
    duration_min    integer NOT NULL DEFAULT 30 CHECK (duration_min > 0),
    meeting_url     text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.ai_conversation_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         uuid NOT NULL,
    prospect_id     uuid REFERENCES public.prospects (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    model           text NOT NULL,
    content         text NOT NULL,
    input_tokens    integer NOT NULL DEFAULT 0,
    output_tokens   integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- On Supabase, tie user_id to Supabase Auth.
DO $$
BEGIN
    IF to_regclass('auth.users') IS NOT NULL THEN
        ALTER TABLE public.campaigns
            ADD CONSTRAINT campaigns_user_id_fkey FOREIGN KEY (user_id)
            REFERENCES auth.users (id) ON DELETE CASCADE;
        ALTER TABLE public.prospects
            ADD CONSTRAINT prospects_user_id_fkey FOREIGN KEY (user_id)
            REFERENCES auth.users (id) ON DELETE CASCADE;
        ALTER TABLE public.meetings
            ADD CONSTRAINT meetings_user_id_fkey FOREIGN KEY (user_id)
            REFERENCES auth.users (id) ON DELETE CASCADE;
        ALTER TABLE public.ai_conversation_log
            ADD CONSTRAINT ai_conversation_log_user_id_fkey FOREIGN KEY (user_id)
            REFERENCES auth.users (id) ON DELETE CASCADE;
    END IF;
END
$$;

-- Indexes that existed before Story 6.3 (the story's "may already exist" list).

-- prospects: user_id under the story's name; status under Postgres' default naming.
CREATE INDEX IF NOT EXISTS idx_prospects_user_id ON public.prospects (user_id);
CREATE INDEX IF NOT EXISTS prospects_status_idx ON public.prospects (status);

-- campaigns: a composite (user_id, status), a single-column user_id index that is its
-- prefix (redundant), and the same created_at index twice under two names (a duplicate).
CREATE INDEX IF NOT EXISTS campaigns_user_id_status_idx ON public.campaigns (user_id, status);
CREATE INDEX IF NOT EXISTS campaigns_user_id_idx ON public.campaigns (user_id);
CREATE INDEX IF NOT EXISTS campaigns_created_at_idx ON public.campaigns (created_at);
CREATE INDEX IF NOT EXISTS idx_campaigns_created ON public.campaigns (created_at);

-- meetings: user_id only as the leading column of a composite; and the story's own name
-- idx_meetings_scheduled_at on a PARTIAL index, which does not serve queries that do not
-- repeat its WHERE clause.
CREATE INDEX IF NOT EXISTS idx_meetings_user_scheduled
    ON public.meetings (user_id, scheduled_at);
CREATE INDEX IF NOT EXISTS idx_meetings_scheduled_at
    ON public.meetings (scheduled_at) WHERE status = 'scheduled';

-- ai_conversation_log: the story's alternative names. user_id is a plain index;
-- created_at is an EXPRESSION index (UTC wall-clock time), which does not serve
-- created_at itself; prospect_id (a foreign key) has no index at all.
CREATE INDEX IF NOT EXISTS idx_conversation_user_id ON public.ai_conversation_log (user_id);
CREATE INDEX IF NOT EXISTS idx_conversation_created_at
    ON public.ai_conversation_log ((created_at AT TIME ZONE 'UTC'));
