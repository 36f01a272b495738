-- ARGV: prefix, limit. The newest dead letters first, one array each:
-- id, task, queue, reason, error, attempts, deliveries, died_at, body
local again = ingested()
if again then return again end
local limit = tonumber(ARGV[2])
local cands = {}
for _, queue in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  local r = redis.call('ZREVRANGE', key('d', queue), 0, limit - 1, 'WITHSCORES')
  for i = 1, #r, 2 do cands[#cands + 1] = {r[i], tonumber(r[i + 1])} end
end
table.sort(cands, function(a, b) return a[2] > b[2] end)
local out = {}
for i = 1, math.min(limit, #cands) do
  local id = cands[i][1]
  local f = redis.call('HMGET', key('m', id), 'task', 'queue', 'reason', 'error', 'attempts',
    'deliveries', 'died_at', 'body')
  out[#out + 1] = {id, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]}
end
return out
