"""What the incident search reads on PostgreSQL, besides the title and summary: the words of each
incident's shared timeline, kept on the incident (Incident.timeline_document).

A trigger on the entries table keeps it: every way an entry changes (the app, the admin, a
restore) refreshes the document of its incident, and only shared entries are in it, so a draft's
words never make an incident turn up in anyone's search. A search then reads two GIN indexes on
the incidents table, however common the word: searching the million entries themselves and
joining back to incidents cost half a second for a word in 200,000 entries.

SQLite (development) has neither tsvector nor triggers; there the search matches substrings of
shared entries directly (IncidentQuerySet.search).
"""

CONFIG = "english"  # the text search configuration of both documents

_WORDS = "concat_ws(' ', e.action, e.observation, e.expectation, e.assumption, e.understanding)"
_DOCUMENTS = f"""
    SELECT e.incident_id, to_tsvector('{CONFIG}', string_agg({_WORDS}, ' ' ORDER BY e.id)) AS doc
    FROM postmortems_timelineentry e
    WHERE e.state = 'shared' {{where}}
    GROUP BY e.incident_id
"""

# Every incident's document at once: the migration's backfill and the scale seeder's.
REFRESH_ALL = f"""
    UPDATE postmortems_incident i SET timeline_document = d.doc
    FROM ({_DOCUMENTS.format(where="")}) d
    WHERE i.id = d.incident_id
"""

CREATE_TRIGGERS = (
    f"""
CREATE OR REPLACE FUNCTION postmortems_refresh_timeline_document(incident bigint)
RETURNS void LANGUAGE sql AS $$
    UPDATE postmortems_incident SET timeline_document = (
        SELECT d.doc FROM ({_DOCUMENTS.format(where="AND e.incident_id = incident")}) d
    )
    WHERE id = incident;
$$
""",
    """
CREATE OR REPLACE FUNCTION postmortems_timeline_document_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('postmortems.bulk_load', true) = 'on' THEN
        RETURN NULL;  -- a bulk load refreshes every document once at its end
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM postmortems_refresh_timeline_document(NEW.incident_id);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM postmortems_refresh_timeline_document(OLD.incident_id);
    ELSE
        PERFORM postmortems_refresh_timeline_document(OLD.incident_id);
        IF NEW.incident_id <> OLD.incident_id THEN
            PERFORM postmortems_refresh_timeline_document(NEW.incident_id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$
""",
    """
CREATE TRIGGER timeline_document_on_insert
    AFTER INSERT ON postmortems_timelineentry FOR EACH ROW
    WHEN (NEW.state = 'shared')
    EXECUTE FUNCTION postmortems_timeline_document_trigger()
""",
    """
CREATE TRIGGER timeline_document_on_delete
    AFTER DELETE ON postmortems_timelineentry FOR EACH ROW
    WHEN (OLD.state = 'shared')
    EXECUTE FUNCTION postmortems_timeline_document_trigger()
""",
    """
CREATE TRIGGER timeline_document_on_update
    AFTER UPDATE OF state, incident_id, action, observation, expectation, assumption,
        understanding
    ON postmortems_timelineentry FOR EACH ROW
    WHEN (OLD.state = 'shared' OR NEW.state = 'shared')
    EXECUTE FUNCTION postmortems_timeline_document_trigger()
""",
)

DROP_TRIGGERS = (
    "DROP TRIGGER IF EXISTS timeline_document_on_insert ON postmortems_timelineentry",
    "DROP TRIGGER IF EXISTS timeline_document_on_delete ON postmortems_timelineentry",
    "DROP TRIGGER IF EXISTS timeline_document_on_update ON postmortems_timelineentry",
    "DROP FUNCTION IF EXISTS postmortems_timeline_document_trigger()",
    "DROP FUNCTION IF EXISTS postmortems_refresh_timeline_document(bigint)",
)

# For loading many entries at once (the scale seeder's COPY): one refresh per row would redo an
# incident's document once per entry. Load between these two (they are per connection), then
# REFRESH_ALL.
BULK_LOAD_ON = "SET postmortems.bulk_load = 'on'"
BULK_LOAD_OFF = "RESET postmortems.bulk_load"
