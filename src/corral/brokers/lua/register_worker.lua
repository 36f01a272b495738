-- ARGV: prefix, id, host, pid, queues (JSON), concurrency, started_at, tasks_done, details
local w = key('w', ARGV[2])
local now = now_s()
redis.call('DEL', w)
redis.call('HSET', w, 'host', ARGV[3], 'pid', ARGV[4], 'queues', ARGV[5],
  'concurrency', ARGV[6], 'started_at', ARGV[7], 'tasks_done', ARGV[8], 'details', ARGV[9],
  'heartbeat_at', now)
redis.call('ZADD', P .. ':workers', now, ARGV[2])
return 1
