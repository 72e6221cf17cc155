-- The bridge is about to publish these messages as dispatch ARGV[2]: it owns them from now on.
--
-- KEYS[1] owner     HASH  offset -> token of the dispatch that owns the message
-- KEYS[2] running   HASH  offset -> token of the run in progress
-- KEYS[3] lease     HASH  offset -> milliseconds (Redis clock) until which the message counts as alive
-- ARGV[1] idle_ms   keys expire after this long without a write
-- ARGV[2] token
-- ARGV[3..] offsets
--
-- A lease that ran out belonged to a run that is over (its worker died or froze): it is dropped
-- with its run marker, so that the new dispatch is judged on its own. A live lease stays: the new
-- copy waits ("busy") until that run ends or its lease runs out.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i = 3, #ARGV do
  local offset = ARGV[i]
  redis.call('HSET', KEYS[1], offset, ARGV[2])
  local lease = redis.call('HGET', KEYS[3], offset)
  if lease and tonumber(lease) <= now_ms then
    redis.call('HDEL', KEYS[3], offset)
    redis.call('HDEL', KEYS[2], offset)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return #ARGV - 2
