-- ARGV: prefix, then 9 fields per envelope:
-- id, task, queue, body, priority, delay_s, lease_s, max_deliveries, result_ttl_s
-- The path for batches with a countdown (their due time is the server's TIME now);
-- batches without one are a plain RPUSH onto the inbox.
local again = ingested()
if again then return again end
local now = now_s()
for i = 2, #ARGV, 9 do
  local queue = ARGV[i + 2]
  accept(ARGV[i], ARGV[i + 1], queue, ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5]),
    ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], now)
  redis.call('SADD', P .. ':queues', queue)
end
wake()
return 0
