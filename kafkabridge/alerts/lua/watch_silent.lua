-- Bridges silent for at least ARGV[1] seconds that never left cleanly: each returned to one caller only.
--
-- KEYS[1] bridges   ZSET    instance -> last heartbeat (epoch seconds, Redis' clock)
-- KEYS[2] who       HASH    instance -> identity JSON
-- ARGV[1] after_s
--
-- The script removes what it returns, so of many processes asking at once exactly one reports a bridge.
-- Returns a flat list: identity JSON, last heartbeat, identity JSON, last heartbeat, ...
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local silent = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'WITHSCORES', 'LIMIT', 0, 100)
local found = {}
for i = 1, #silent, 2 do
  local instance = silent[i]
  table.insert(found, redis.call('HGET', KEYS[2], instance) or '{}')
  table.insert(found, silent[i + 1])
  redis.call('ZREM', KEYS[1], instance)
  redis.call('HDEL', KEYS[2], instance)
end
return found
