-- ARGV: prefix. One array per queue with anything in it: queue, ready, scheduled, running, dead.
local again = ingested()
if again then return again end
local out = {}
for _, queue in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  local row = {queue, redis.call('ZCARD', key('q', queue)), redis.call('ZCARD', key('s', queue)),
    redis.call('ZCARD', key('l', queue)), redis.call('ZCARD', key('d', queue))}
  if row[2] + row[3] + row[4] + row[5] > 0 then out[#out + 1] = row end
end
return out
