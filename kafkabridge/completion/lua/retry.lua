-- A tracked message failed and waits for a countdown retry: record the attempt and keep it alive.
--
-- KEYS[1] claims    ZSET  "first:last:token" per claimed range (score = first): who owns each offset
-- KEYS[2] running   HASH  offset -> token of the run in progress
-- KEYS[3] attempts  HASH  offset -> handler attempts already used
-- KEYS[4] lease     HASH  offset -> milliseconds (Redis clock) until which the message counts as alive
-- ARGV[1] offset
-- ARGV[2] token     the dispatch token of the task that failed
-- ARGV[3] attempts  attempts used so far, this one included
-- ARGV[4] lease_ms  countdown + time limit + grace: how long the waiting retry counts as alive
-- ARGV[5] idle_ms   keys expire after this long without a write
--
-- The attempt is recorded whoever owns the message now: the run happened, and the copy the bridge
-- dispatched meanwhile goes on counting from it. Returns 1, or 0 when another dispatch owns the
-- message: then this run only says it is over (no lease: the newer copy runs next).
local offset = ARGV[1]
if redis.call('HGET', KEYS[2], offset) == ARGV[2] then redis.call('HDEL', KEYS[2], offset) end
if tonumber(redis.call('HGET', KEYS[3], offset) or '0') < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[3], offset, ARGV[3])
end
redis.call('PEXPIRE', KEYS[3], ARGV[5])
local claim = redis.call('ZREVRANGEBYSCORE', KEYS[1], offset, '-inf', 'LIMIT', 0, 1)[1]
if claim then
  local last, owner = string.match(claim, '^%d+:(%d+):(.*)$')
  if tonumber(last) >= tonumber(offset) and owner ~= ARGV[2] then return 0 end
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[4], offset, now_ms + tonumber(ARGV[4]))
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return 1
