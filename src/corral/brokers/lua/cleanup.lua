-- ARGV: prefix, worker_expiry_s. Results and notifications expire by themselves (PEXPIRE);
-- this counts them, removes workers silent for longer than worker_expiry_s and forgets
-- empty queues. Returns results expired since the last call plus workers removed.
local again = ingested()
if again then return again end
local now = now_s()
trim_expired_results(now)
local n = tonumber(redis.call('GETDEL', P .. ':expired') or '0')
local cutoff = now - tonumber(ARGV[2])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':workers', '-inf', cutoff)) do
  redis.call('DEL', key('w', id))
  redis.call('ZREM', P .. ':workers', id)
  n = n + 1
end
for _, queue in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  if redis.call('EXISTS', key('q', queue), key('s', queue), key('l', queue),
      key('d', queue)) == 0 then
    redis.call('SREM', P .. ':queues', queue)
  end
end
return n
