-- ARGV: prefix, queue... Seconds until something may be deliverable in the queues:
-- 0 if a message is ready or due now, -1 if nothing is ready, scheduled or leased.
ingest()
local queues = {}
for i = 2, #ARGV do queues[#queues + 1] = ARGV[i] end
return deliverable_in(queues, now_s())
