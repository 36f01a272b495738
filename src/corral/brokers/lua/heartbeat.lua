-- ARGV: prefix, id, tasks_done, details. Returns 0 for a worker that is not registered.
local w = key('w', ARGV[2])
if redis.call('EXISTS', w) == 0 then return 0 end
local now = now_s()
redis.call('HSET', w, 'tasks_done', ARGV[3], 'details', ARGV[4], 'heartbeat_at', now)
redis.call('ZADD', P .. ':workers', now, ARGV[2])
return 1
