-- A bridge with alerts on is alive (its heartbeat, on Redis' clock), unless it already left cleanly.
--
-- KEYS[1] bridges   ZSET    instance -> last heartbeat (epoch seconds)
-- KEYS[2] who       HASH    instance -> identity JSON (group, host, pid), for the alert once it is silent
-- KEYS[3] left      STRING  set by a clean stop: a heartbeat recorded after it must not bring the bridge back
-- ARGV[1] instance, ARGV[2] identity JSON
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
