-- ARGV: prefix, id. The stored outcome: state, payload, finished_at (nil if none).
-- A script, not an HMGET, so that a resend still in the inbox has replaced the outcome.
local again = ingested()
if again then return again end
return redis.call('HMGET', key('r', ARGV[2]), 'state', 'payload', 'finished_at')
