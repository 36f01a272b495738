-- ARGV: prefix, then (id, token) pairs. Returns per pair: 0 lost, 1 held, 2 revoked.
local now = now_s()
local out = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', key('m', id), 'state', 'token', 'revoked', 'lease_s', 'queue')
  if f[1] ~= 'running' or f[2] ~= token then
    out[#out + 1] = 0
  else
    -- An expired lease nobody re-leased yet is still this worker's: renew it.
    redis.call('ZADD', key('l', f[5]), now + tonumber(f[4]), id)
    if f[3] == 'terminate' then out[#out + 1] = 2 else out[#out + 1] = 1 end
  end
end
return out
