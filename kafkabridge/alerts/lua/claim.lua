-- Take the groups whose look is due, each under a lock, unless a 429 holds every sender.
-- KEYS[1] due schedule, KEYS[2] the hold key (set after a 429); ARGV[1] key prefix, ARGV[2] lock token,
-- ARGV[3] lock milliseconds, ARGV[4] most groups at once
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local claimed = {}
for _, gid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))) do
  if redis.call('SET', ARGV[1] .. ':lock:' .. gid, ARGV[2], 'NX', 'PX', ARGV[3]) then
    -- out of the others' way while locked; a sender that dies leaves it due again when its lock expires
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]) / 1000, gid)
    table.insert(claimed, gid)
  end
end
return claimed
