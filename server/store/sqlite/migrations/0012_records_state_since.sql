-- ListAccountHealth ordered by how long each account has been in its
-- state (the dashboard's accounts table sorts by it): keyset pages over
-- (state since, account id), all records or those of one state, read in
-- either direction from these indexes. A record without the time sorts as
-- 1970 (the store's sinceKey). Filtered by user or error code, the few
-- records of one user, or those of one code, are sorted instead.
CREATE INDEX records_since ON records ((COALESCE(state_since, 0)), account_id);
CREATE INDEX records_state_since ON records (state, (COALESCE(state_since, 0)), account_id);
