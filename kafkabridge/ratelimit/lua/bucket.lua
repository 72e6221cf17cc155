-- Take up to ARGV[3] tokens from a token bucket, atomically, on Redis' clock (kafkabridge/ratelimit/bucket.py
-- is the same maths in Python).
--
-- KEYS[1] bucket    HASH  t = tokens left (float as a string), at = when they were counted (microseconds)
-- ARGV[1] rate      tokens per second (float; 0 never refills)
-- ARGV[2] burst     capacity (float); a bucket seen for the first time is full
-- ARGV[3] requested whole tokens wanted
-- ARGV[4] idle_ms   the key expires after this long without a take
-- ARGV[5] horizon   seconds (0: none); tokens due within it are reserved: granted now, usable after wait
--
-- Returns {granted, wait} with wait = seconds until the next whole token, as a string ("inf" when the
-- rate is 0 or the burst below one token): Lua numbers returned to Redis are truncated to integers, so floats travel as strings.
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = burst
local at = now_us
if state[1] then
  at = tonumber(state[2])
  local elapsed = math.max(0, now_us - at) / 1000000
  tokens = math.min(burst, tonumber(state[1]) + rate * elapsed)
  at = math.max(now_us, at)
end
local horizon = tonumber(ARGV[5] or '0')
if horizon > 0 and rate > 0 and burst >= 1 and tokens < requested then
  local due = (requested - tokens) / rate
  local granted_now = 0
  if due <= horizon then
    tokens = tokens - requested
    granted_now = requested
  else
    due = due - horizon
  end
  redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(at))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {granted_now, tostring(due)}
end
local granted = math.max(0, math.min(requested, math.floor(tokens + 1e-9)))
local left = tokens - granted
local wait = '0'
if granted < requested then
  if rate == 0 or burst < 1 then wait = 'inf' else wait = tostring(math.max(0, (1 - left) / rate)) end
end
redis.call('HSET', KEYS[1], 't', tostring(left), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {granted, wait}
