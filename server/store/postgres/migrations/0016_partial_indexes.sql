-- Most records are HEALTHY with no error code (four in five, typically),
-- and those the indexes by state and by error code serve least: listing
-- HEALTHY accounts reads the primary key (or records_since) and keeps the
-- many that match. So these indexes hold only the other records, which
-- keeps the store near the size of the bodies it keeps. A query that
-- reads them states the index's condition itself (sqlstore's notHealthy
-- and hasErrorCode), so that both planners see it holds whatever the
-- arguments. 2 is health.StateHealthy.
DROP INDEX records_state;
CREATE INDEX records_state ON records (state, account_id) WHERE state <> 2;
DROP INDEX records_state_since;
CREATE INDEX records_state_since ON records (state, (COALESCE(state_since, 0)), account_id) WHERE state <> 2;
DROP INDEX records_error_code;
CREATE INDEX records_error_code ON records (error_code, account_id) WHERE error_code <> '';
