-- Shared by every corral script (prepended to each one). ARGV[1] is the key prefix.
-- Keys are built here from the prefix, so corral needs a standalone Redis (not Cluster).
--   P:inbox    list   sent messages not yet accepted: send is one RPUSH (see ingest below)
--   P:m:ID     hash   a pending, running or dead-lettered message
--   P:q:QUEUE  zset   ready ids, score = -priority * 2^40 + seq (higher priority first, FIFO)
--   P:s:QUEUE  zset   scheduled and retrying ids, score = due time
--   P:l:QUEUE  zset   leased ids, score = lease deadline
--   P:d:QUEUE  zset   dead letters, score = died_at
--   P:done:ID  list   the stored outcome, one element "STATE FINISHED_AT TOKEN PAYLOAD"
--                     (expires after result_ttl_s); wait_result blocks on it, and the
--                     element that wakes it is the outcome itself
--   P:results  zset   result ids by expiry time, trimmed by reserve and cleanup
--   P:queues   set    every queue name seen
local P = ARGV[1]
local PRIO_SPAN = 1099511627776 -- 2^40: seq stays exact in a double for |priority| < 4096
local INBOX = P .. ':inbox'
local INGEST_BATCH = 2000 -- inbox entries accepted per script call (bounds script time)
local PENDING = {queued = true, scheduled = true, running = true, retrying = true}

local function now_s()
  -- The broker's clock, never a worker's (a skewed worker must not expire others' leases).
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function key(kind, name)
  return P .. ':' .. kind .. ':' .. name
end

local function ready_score(priority, seq)
  return -tonumber(priority) * PRIO_SPAN + tonumber(seq)
end

local function wake()
  -- Idle workers block on the inbox (BLMOVE onto itself, which wakes them all without
  -- taking anything): an empty entry there is a nudge to look again. A non-empty inbox
  -- has no one blocked on it, so it needs none.
  if redis.call('LLEN', INBOX) == 0 then
    redis.call('RPUSH', INBOX, '')
  end
end

local function make_ready(id, m, queue, fresh)
  -- fresh: take a new place at the back (a due ETA, a retry); else keep the old place
  -- (a hand-back or an expired lease goes where it was).
  local f = redis.call('HMGET', m, 'priority', 'seq')
  local seq = f[2]
  if fresh then
    seq = redis.call('INCR', P .. ':seq')
    redis.call('HSET', m, 'seq', seq)
  end
  redis.call('HSET', m, 'state', 'queued')
  redis.call('ZADD', key('q', queue), ready_score(f[1], seq), id)
end

local function schedule(id, m, queue, state, due)
  redis.call('HSET', m, 'state', state)
  redis.call('ZADD', key('s', queue), due, id)
end

local function store_result(id, state, payload, now, ttl_s, token)
  local ms = math.max(1, math.ceil(tonumber(ttl_s) * 1000))
  local d = key('done', id)
  redis.call('DEL', d)
  redis.call('RPUSH', d, state .. ' ' .. string.format('%.6f', now) .. ' ' .. token .. ' '
    .. payload)
  redis.call('PEXPIRE', d, ms)
  -- Redis deletes the result itself; this index only lets cleanup() count expiries.
  redis.call('ZADD', P .. ':results', now + ms / 1000, id)
end

local function stored_outcome(id)
  -- The stored outcome's state and token (strings), or nil when there is none.
  local entry = redis.call('LINDEX', key('done', id), 0)
  if not entry then return nil end
  local state, token = string.match(entry, '^(%S+) %S+ (%S+) ')
  return state, token
end

local function finish(id, m, state, payload, now)
  local f = redis.call('HMGET', m, 'result_ttl_s', 'token')
  store_result(id, state, payload, now, f[1], f[2])
  redis.call('DEL', m)
end

local function bury(id, m, queue, final, reason, payload, now)
  local f = redis.call('HMGET', m, 'result_ttl_s', 'token')
  store_result(id, final, payload, now, f[1], f[2])
  redis.call('HSET', m, 'state', 'buried', 'final', final, 'reason', reason,
    'error', payload, 'died_at', now)
  redis.call('ZADD', key('d', queue), now, id)
end

local function forget_result(id)
  if redis.call('DEL', key('done', id)) > 0 then
    redis.call('ZREM', P .. ':results', id)
  end
end

local function trim_expired_results(now)
  -- Counted for cleanup(), which reports how many results expired since its last call.
  local n = redis.call('ZREMRANGEBYSCORE', P .. ':results', '-inf', now)
  if n > 0 then redis.call('INCRBY', P .. ':expired', n) end
end

local function accept(id, task, queue, body, priority, delay_s, lease_s, max_deliveries,
                      result_ttl_s, now)
  -- Store one sent message, unless its id is still pending (send is idempotent).
  local m = key('m', id)
  local state = redis.call('HGET', m, 'state')
  if PENDING[state] then return end
  if state == 'buried' then
    redis.call('ZREM', key('d', redis.call('HGET', m, 'queue')), id)
    redis.call('DEL', m)
  end
  forget_result(id) -- a resend replaces a stored outcome
  local seq = redis.call('INCR', P .. ':seq')
  local first = 'queued'
  if delay_s > 0 then first = 'scheduled' end
  redis.call('HSET', m, 'task', task, 'queue', queue, 'body', body, 'priority', priority,
    'lease_s', lease_s, 'max_deliveries', max_deliveries, 'result_ttl_s', result_ttl_s,
    'seq', seq, 'token', 0, 'deliveries', 0, 'attempts', 0, 'state', first)
  if delay_s > 0 then
    redis.call('ZADD', key('s', queue), now + delay_s, id)
  else
    redis.call('ZADD', key('q', queue), ready_score(priority, seq), id)
  end
end

local function unpack_entry(entry)
  -- The packing of RedisBroker._pack: "ID_LEN TASK_LEN QUEUE_LEN PRIORITY LEASE_S
  -- MAX_DELIVERIES RESULT_TTL_S " then id, task, queue and body back to back.
  local li, lt, lq, priority, lease_s, max_deliveries, ttl_s, at = string.match(entry,
    '^(%d+) (%d+) (%d+) (%S+) (%S+) (%S+) (%S+) ()')
  li, lt, lq = tonumber(li), tonumber(lt), tonumber(lq)
  local id = string.sub(entry, at, at + li - 1)
  local task = string.sub(entry, at + li, at + li + lt - 1)
  local queue = string.sub(entry, at + li + lt, at + li + lt + lq - 1)
  local body = string.sub(entry, at + li + lt + lq)
  return id, task, queue, body, priority, lease_s, max_deliveries, ttl_s
end

local function ingest(nudge)
  -- Accept the oldest sent messages, in send order. Returns true when the inbox is empty.
  -- nudge: leave idle workers a wake-up if messages were accepted (see below).
  local entries = redis.call('LPOP', INBOX, INGEST_BATCH)
  if not entries then return true end
  local queues = {}
  local accepted = false
  for _, entry in ipairs(entries) do
    if entry ~= '' then
      local id, task, queue, body, priority, lease_s, max_d, ttl_s = unpack_entry(entry)
      accept(id, task, queue, body, priority, 0, lease_s, max_d, ttl_s, 0)
      queues[queue] = true
      accepted = true
    end
  end
  for queue in pairs(queues) do redis.call('SADD', P .. ':queues', queue) end
  -- A script other than a worker's own reserve/wait (a client's get_result, say) may
  -- accept a message just after an idle worker looked and before it blocks on the
  -- inbox: the worker would find the inbox empty and sleep through a ready message.
  -- Such scripts leave a nudge. (Workers' own scripts do not: nudging on every
  -- reserve cost ~15% of throughput.)
  if nudge and accepted then wake() end
  return #entries < INGEST_BATCH or redis.call('LLEN', INBOX) == 0
end

local function deliverable_in(queues, now)
  -- Seconds until something may be deliverable in the queues, as a string: '0' if a
  -- message is ready or due now, '-1' if nothing is ready, scheduled or leased.
  local soonest = nil
  for _, queue in ipairs(queues) do
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
end

local function ingested()
  -- For scripts that must see every sent message: when a backlog is left after one
  -- batch, the client calls again (RedisBroker retries on this error), so Redis serves
  -- other clients between batches instead of stalling on a huge inbox.
  if not ingest(true) then
    return redis.error_reply('CORRAL_AGAIN')
  end
  return nil
end
