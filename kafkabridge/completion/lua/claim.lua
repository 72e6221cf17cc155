-- The bridge is about to publish these messages as dispatch ARGV[2]: it owns them from now on.
--
-- KEYS[1] claims    ZSET  one member "first:last:token" per claimed range of offsets, score = first;
--                         ranges never overlap (a newer claim cuts the older ones it covers)
-- KEYS[2] running   HASH  offset -> token of the run in progress
-- KEYS[3] lease     HASH  offset -> milliseconds (Redis clock) until which it counts as alive
-- KEYS[4] crashes   HASH  offset -> runs that began and never ended
-- ARGV[1] idle_ms   keys expire after this long without a write
-- ARGV[2] token
-- ARGV[3] again     "1" when these messages were dispatched before (the bridge dispatches them again)
-- ARGV[4..]         first, last: contiguous ranges of offsets (a fresh batch is usually one per partition)
--
-- A fresh dispatch costs one range, whatever its size. A dispatch "again" also looks at each offset:
-- a lease that ran out belonged to a run that is over, and is dropped with its run marker, so that
-- the bridge's next look does not take the new dispatch for lost and the new dispatch is judged on
-- its own. If a run had begun under it (the marker is there), that run never ended (its worker died
-- or froze, or Celery's hard time limit killed it and acknowledged the task): it counts as a crash,
-- so that a message that always dies this way is dead-lettered after max_crashes. A live lease
-- stays: the new copy waits ("busy") until that run ends or its lease runs out. (begin.lua judges a
-- dead run the same way when a fresh dispatch meets one, e.g. after a bridge restart.)
local function int(n) return string.format('%d', n) end
local function range(member)
  local first, last, token = string.match(member, '^(%d+):(%d+):(.*)$')
  return tonumber(first), tonumber(last), token
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i = 4, #ARGV, 2 do
  local first, last = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  for _, member in ipairs(redis.call('ZREVRANGEBYSCORE', KEYS[1], last, '-inf')) do
    local a, b, token = range(member)
    if b < first then break end
    redis.call('ZREM', KEYS[1], member)
    if a < first then redis.call('ZADD', KEYS[1], a, int(a) .. ':' .. int(first - 1) .. ':' .. token) end
    if b > last then redis.call('ZADD', KEYS[1], last + 1, int(last + 1) .. ':' .. int(b) .. ':' .. token) end
  end
  redis.call('ZADD', KEYS[1], first, int(first) .. ':' .. int(last) .. ':' .. ARGV[2])
  if ARGV[3] == '1' then
    for offset = first, last do
      local field = int(offset)
      local lease = redis.call('HGET', KEYS[3], field)
      if lease and tonumber(lease) <= now_ms then
        if redis.call('HDEL', KEYS[2], field) == 1 then
          redis.call('HINCRBY', KEYS[4], field, 1)
          redis.call('PEXPIRE', KEYS[4], ARGV[1])
        end
        redis.call('HDEL', KEYS[3], field)
      end
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
