-- ARGV: prefix, limit, owner, queue...
-- Returns {bound, leased}: leased has one array per leased message (id, task, queue,
-- priority, body, token, deliveries, attempts, lease_s); bound is '' when the limit was
-- reached, else what wait_bound would answer now (the worker's wait then skips it).
local BATCH = 1000 -- due or expired entries handled per queue and call (bounds script time)

local function promote_due(queue, now)
  local s = key('s', queue)
  local due = redis.call('ZRANGEBYSCORE', s, '-inf', now, 'LIMIT', 0, BATCH)
  for _, id in ipairs(due) do
    redis.call('ZREM', s, id)
    local m = key('m', id)
    if redis.call('EXISTS', m) == 1 then make_ready(id, m, queue, true) end
  end
end

local function reclaim_one(id, queue, now)
  -- The worker died or hung. A task revoked while it ran must never run again.
  local m = key('m', id)
  local f = redis.call('HMGET', m, 'state', 'revoked')
  if f[1] ~= 'running' then return end
  if f[2] then
    finish(id, m, 'revoked', '', now)
  else
    make_ready(id, m, queue)
  end
end

local function reclaim_expired(queue, now)
  local l = key('l', queue)
  local expired = redis.call('ZRANGEBYSCORE', l, '-inf', now, 'LIMIT', 0, BATCH)
  for _, id in ipairs(expired) do
    redis.call('ZREM', l, id)
    reclaim_one(id, queue, now)
  end
end

local function pick_one_queue(queue, limit)
  local popped = redis.call('ZPOPMIN', key('q', queue), limit)
  local ids = {}
  for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
  return ids
end

local function pick_many_queues(queues, limit)
  local cands = {}
  for _, queue in ipairs(queues) do
    local r = redis.call('ZRANGE', key('q', queue), 0, limit - 1, 'WITHSCORES')
    for i = 1, #r, 2 do
      cands[#cands + 1] = {r[i], tonumber(r[i + 1]), queue}
    end
  end
  table.sort(cands, function(a, b) return a[2] < b[2] end)
  local ids = {}
  for i = 1, math.min(limit, #cands) do
    redis.call('ZREM', key('q', cands[i][3]), cands[i][1])
    ids[#ids + 1] = cands[i][1]
  end
  return ids
end

local function is_poison(id, m, now)
  -- Every earlier delivery ended with its worker dead: bury it instead of a new victim.
  local f = redis.call('HMGET', m, 'deliveries', 'max_deliveries', 'queue', 'error')
  if tonumber(f[1]) < tonumber(f[2]) then return false end
  local reason = 'delivered ' .. f[1] .. ' times without finishing: the worker running it '
    .. 'died each time (poison message?)'
  bury(id, m, f[3], 'dead', reason, f[4] or '', now)
  return true
end

local function lease(id, owner, now)
  local m = key('m', id)
  if redis.call('EXISTS', m) == 0 or is_poison(id, m, now) then return nil end
  local token = redis.call('INCR', P .. ':token')
  local deliveries = redis.call('HINCRBY', m, 'deliveries', 1)
  redis.call('HSET', m, 'state', 'running', 'token', token, 'owner', owner)
  local f = redis.call('HMGET', m, 'task', 'queue', 'priority', 'body', 'attempts', 'lease_s')
  redis.call('ZADD', key('l', f[2]), now + tonumber(f[6]), id)
  return {id, f[1], f[2], f[3], f[4], token, deliveries, f[5], f[6]}
end

local limit, owner = tonumber(ARGV[2]), ARGV[3]
local queues = {}
for i = 4, #ARGV do queues[#queues + 1] = ARGV[i] end
local now = now_s()
ingest() -- a backlog beyond one batch is taken by the next calls, in order
trim_expired_results(now)
for _, queue in ipairs(queues) do
  promote_due(queue, now)
  reclaim_expired(queue, now)
end
local ids
if #queues == 1 then
  ids = pick_one_queue(queues[1], limit)
else
  ids = pick_many_queues(queues, limit)
end
local out = {}
for _, id in ipairs(ids) do
  local d = lease(id, owner, now)
  if d then out[#out + 1] = d end
end
if #out >= limit then return {'', out} end
return {deliverable_in(queues, now), out}
