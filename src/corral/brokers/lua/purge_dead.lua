-- ARGV: prefix. Deletes every dead letter; returns how many.
local again = ingested()
if again then return again end
local n = 0
for _, queue in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  local d = key('d', queue)
  for _, id in ipairs(redis.call('ZRANGE', d, 0, -1)) do
    redis.call('DEL', key('m', id))
    n = n + 1
  end
  redis.call('DEL', d)
end
return n
