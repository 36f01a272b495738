-- ARGV: prefix, id. Moves a dead letter back to its queue with fresh counters.
local again = ingested()
if again then return again end
local id = ARGV[2]
local m = key('m', id)
local f = redis.call('HMGET', m, 'state', 'queue')
if f[1] ~= 'buried' then return 0 end
redis.call('ZREM', key('d', f[2]), id)
redis.call('HDEL', m, 'final', 'reason', 'error', 'died_at', 'revoked', 'settled', 'owner')
redis.call('HSET', m, 'attempts', 0, 'deliveries', 0)
forget_result(id)
make_ready(id, m, f[2], true)
wake()
return 1
