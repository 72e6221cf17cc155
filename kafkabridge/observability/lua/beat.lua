-- A bridge says it is alive: its status, and its heartbeat on Redis' clock.
--
-- KEYS[1] index     ZSET    instance -> its last heartbeat (epoch seconds, Redis' clock)
-- KEYS[2] status    STRING  this instance's status as JSON; expires ttl_ms after this heartbeat
-- ARGV[1] instance
-- ARGV[2] status    JSON
-- ARGV[3] ttl_ms
-- ARGV[4] forget_s  index entries silent this long (their status expired long ago) are dropped
--
-- Returns the heartbeat time (epoch seconds, as a string).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]))
return tostring(now)
