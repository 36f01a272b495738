-- ARGV: prefix, retried ('1' when the client resends after a lost reply), then 7 fields
-- per settlement: id, token, state, payload, delay_s, reason, crashed ('1' or '0').
-- Returns per settlement 1 (applied) or 0 (stale token: nothing changed).

local function replayed(id, token, state, settled)
  -- Only for a resent call: its first run may have applied this very outcome before
  -- the connection broke, and the outcome then carries this token and state.
  if ARGV[2] ~= '1' then return false end
  if settled == token .. ':' .. state then return true end
  local stored, stored_token = stored_outcome(id)
  return stored_token == token and stored == state
end

local function retry(id, m, queue, payload, due)
  -- deliveries restarts: max_deliveries counts deaths within one attempt, and a retry
  -- follows a finished attempt, so many retries must not look like a poison message.
  redis.call('HINCRBY', m, 'attempts', 1)
  redis.call('HSET', m, 'error', payload, 'deliveries', 0)
  schedule(id, m, queue, 'retrying', due)
  wake()
end

local function hand_back(id, m, queue, delay_s, crashed, now)
  -- A graceful stop's hand-back does not count towards max_deliveries; a crash does,
  -- so a message that kills every worker ends in the dead letters.
  if crashed ~= '1' and tonumber(redis.call('HGET', m, 'deliveries')) > 0 then
    redis.call('HINCRBY', m, 'deliveries', -1)
  end
  if delay_s > 0 then
    schedule(id, m, queue, 'scheduled', now + delay_s)
  else
    make_ready(id, m, queue)
  end
  wake()
end

local function apply(id, m, queue, state, payload, delay_s, reason, crashed, now)
  if state == 'succeeded' or state == 'revoked' then
    finish(id, m, state, payload, now)
  elseif state == 'failed' or state == 'dead' then
    if reason == '' then
      reason = 'task ' .. redis.call('HGET', m, 'task') .. ' ended ' .. string.upper(state)
    end
    bury(id, m, queue, state, reason, payload, now)
  elseif state == 'retrying' then
    retry(id, m, queue, payload, now + delay_s)
  elseif state == 'queued' then
    hand_back(id, m, queue, delay_s, crashed, now)
  else
    return redis.error_reply('corral settle: unknown state ' .. state)
  end
end

local now = now_s()
local out = {}
for i = 3, #ARGV, 7 do
  local id, token, state = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local m = key('m', id)
  local f = redis.call('HMGET', m, 'state', 'token', 'revoked', 'queue', 'settled')
  if f[1] ~= 'running' or f[2] ~= token then
    if replayed(id, token, state, f[5]) then out[#out + 1] = 1 else out[#out + 1] = 0 end
  else
    redis.call('ZREM', key('l', f[4]), id)
    if f[3] and (state == 'retrying' or state == 'queued') then state = 'revoked' end
    redis.call('HSET', m, 'settled', token .. ':' .. state)
    local err = apply(id, m, f[4], state, ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5],
      ARGV[i + 6], now)
    if err then return err end
    out[#out + 1] = 1
  end
end
return out
