-- ARGV: prefix. One array per registered worker:
-- id, host, pid, queues, concurrency, started_at, heartbeat_at, tasks_done, details
local out = {}
for _, id in ipairs(redis.call('ZRANGE', P .. ':workers', 0, -1)) do
  local f = redis.call('HMGET', key('w', id), 'host', 'pid', 'queues', 'concurrency',
    'started_at', 'heartbeat_at', 'tasks_done', 'details')
  if f[1] then out[#out + 1] = {id, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]} end
end
return out
