-- A tracked message failed and waits for a countdown retry: record the attempt and keep it alive.
--
-- KEYS[1] owner     HASH  offset -> token of the owning dispatch
-- KEYS[2] running   HASH  offset -> token of the run in progress
-- KEYS[3] attempts  HASH  offset -> handler attempts already used
-- KEYS[4] lease     HASH  offset -> milliseconds (Redis clock) until which the message counts as alive
-- ARGV[1] offset
-- ARGV[2] token     the dispatch token of the task that failed
-- ARGV[3] attempts  attempts used so far, this one included
-- ARGV[4] lease_ms  countdown + time limit + grace: how long the waiting retry counts as alive
-- ARGV[5] idle_ms   keys expire after this long without a write
--
-- Returns 1, or 0 when another dispatch owns the message: then this run only says it is over.
local offset = ARGV[1]
if redis.call('HGET', KEYS[2], offset) == ARGV[2] then redis.call('HDEL', KEYS[2], offset) end
if redis.call('HGET', KEYS[1], offset) ~= ARGV[2] then return 0 end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[3], offset, ARGV[3])
redis.call('HSET', KEYS[4], offset, now_ms + tonumber(ARGV[4]))
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return 1
