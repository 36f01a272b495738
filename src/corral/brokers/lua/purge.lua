-- ARGV: prefix, queue. Deletes the queue's ready and scheduled messages (never leased ones).
local again = ingested()
if again then return again end
local queue = ARGV[2]
local n = 0
for _, zset in ipairs({key('q', queue), key('s', queue)}) do
  local ids = redis.call('ZRANGE', zset, 0, -1)
  for _, id in ipairs(ids) do
    redis.call('DEL', key('m', id))
    n = n + 1
  end
  redis.call('DEL', zset)
end
return n
