-- ARGV: prefix, id. The task's state name, or nil when the broker does not know the id.
local again = ingested()
if again then return again end
local id = ARGV[2]
local f = redis.call('HMGET', key('m', id), 'state', 'final')
if f[1] and f[1] ~= 'buried' then return f[1] end
local stored = stored_outcome(id)
if stored then return stored end
if f[1] == 'buried' then return f[2] end
return nil
