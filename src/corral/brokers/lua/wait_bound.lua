-- ARGV: prefix, queue... Seconds until something may be deliverable in the queues:
-- 0 if a message is ready or due now, -1 if nothing is ready, scheduled or leased.
ingest()
local now = now_s()
local soonest = nil
for i = 2, #ARGV do
  local queue = ARGV[i]
  if redis.call('ZCARD', key('q', queue)) > 0 then return '0' end
  for _, zset in ipairs({key('s', queue), key('l', queue)}) do
    local first = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
    if first[2] then
      local due = tonumber(first[2]) - now
      if soonest == nil or due < soonest then soonest = due end
    end
  end
end
if soonest == nil then return '-1' end
return tostring(math.max(0, soonest))
