-- ARGV: prefix, id, terminate ('1' or '0').
-- Returns 1 if revoked (pending removed, or running flagged), else 0.
local again = ingested()
if again then return again end
local id = ARGV[2]
local m = key('m', id)
local f = redis.call('HMGET', m, 'state', 'queue')
local state, queue = f[1], f[2]
if state == 'running' then
  -- Flagged only: no retry follows; with terminate, extend() reports REVOKED so the
  -- worker kills it now. A later revoke may add terminate, never take it away.
  if ARGV[3] == '1' then
    redis.call('HSET', m, 'revoked', 'terminate')
  else
    redis.call('HSETNX', m, 'revoked', 'finish')
  end
  return 1
end
if state == 'queued' then
  redis.call('ZREM', key('q', queue), id)
elseif state == 'scheduled' or state == 'retrying' then
  redis.call('ZREM', key('s', queue), id)
else
  return 0
end
finish(id, m, 'revoked', '', now_s())
return 1
