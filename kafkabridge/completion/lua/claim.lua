-- The bridge is about to publish these messages as dispatch ARGV[2]: it owns them from now on.
--
-- KEYS[1] owner     HASH  offset -> token of the dispatch that owns the message
-- KEYS[2] running   HASH  offset -> token of the run in progress
-- KEYS[3] lease     HASH  offset -> milliseconds (Redis clock) until which the message counts as alive
-- KEYS[4] crashes   HASH  offset -> runs that began and never ended
-- ARGV[1] idle_ms   keys expire after this long without a write
-- ARGV[2] token
-- ARGV[3..] offsets
--
-- A lease that ran out belonged to a run that is over: it is dropped with its run marker, so that
-- the new dispatch is judged on its own. If a run had begun under it (the marker is there), that
-- run never ended (its worker died or froze, or Celery's hard time limit killed it and acknowledged
-- the task): it counts as a crash, so that a message that always dies this way is dead-lettered
-- after max_crashes instead of being dispatched forever. A live lease stays: the new copy waits
-- ("busy") until that run ends or its lease runs out.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i = 3, #ARGV do
  local offset = ARGV[i]
  redis.call('HSET', KEYS[1], offset, ARGV[2])
  local lease = redis.call('HGET', KEYS[3], offset)
  if lease and tonumber(lease) <= now_ms then
    if redis.call('HDEL', KEYS[2], offset) == 1 then
      redis.call('HINCRBY', KEYS[4], offset, 1)
      redis.call('PEXPIRE', KEYS[4], ARGV[1])
    end
    redis.call('HDEL', KEYS[3], offset)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return #ARGV - 2
