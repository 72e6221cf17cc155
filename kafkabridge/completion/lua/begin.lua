-- A worker is about to run a handler on one tracked message: is it still this dispatch's to run?
--
-- KEYS[1] floor     STRING  the partition's committed offset: everything below it is final
-- KEYS[2] done      ZSET    offsets at or above the floor whose outcome is final (score = offset)
-- KEYS[3] claims    ZSET    "first:last:token" per claimed range (score = first): who owns each offset
-- KEYS[4] running   HASH    offset -> token of the run in progress (set here, cleared at its end)
-- KEYS[5] crashes   HASH    offset -> runs that began and never ended (a dead worker, a hard time limit)
-- KEYS[6] attempts  HASH    offset -> handler attempts already used (survives a re-dispatch)
-- KEYS[7] lease     HASH    offset -> milliseconds (Redis clock) until which the message counts as alive
-- ARGV[1] offset
-- ARGV[2] token     the dispatch token the task carries
-- ARGV[3] lease_ms  how long this run may take before the bridge may think it lost
-- ARGV[4] idle_ms   keys expire after this long without a write
-- ARGV[5] groups    how many groups of final outcomes ride along (the worker's earlier runs), each
--                   then given as a count and its offsets in ARGV, and as six keys after KEYS[7]
--                   (floor, done, running, crashes, attempts, lease of its partition): recorded
--                   first, exactly as finish.lua does, in the same call
--
-- Returns {verdict, attempts_used, crashes, wait_ms}; verdict is
--   "run"         run the handler (attempts_used: spent by earlier runs; crashes: runs that never ended)
--   "done"        final already: this copy is a duplicate
--   "superseded"  the bridge dispatched the message again; this copy stands down
--   "busy"        a run of an older dispatch may still be going; ask again in wait_ms
local function finish(k, first, last)
  local floor = tonumber(redis.call('GET', KEYS[k]) or '-1')
  for i = first, last do
    local offset = ARGV[i]
    if tonumber(offset) >= floor then redis.call('ZADD', KEYS[k + 1], offset, offset) end
    for j = k + 2, k + 5 do redis.call('HDEL', KEYS[j], offset) end
  end
  redis.call('PEXPIRE', KEYS[k + 1], ARGV[4])
end
local at = 6
for group = 1, tonumber(ARGV[5] or '0') do
  local count = tonumber(ARGV[at])
  finish(8 + (group - 1) * 6, at + 1, at + count)
  at = at + count + 1
end

local offset = ARGV[1]
local floor = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(offset) < floor or redis.call('ZSCORE', KEYS[2], offset) then
  return {'done', 0, 0, 0}
end
local claim = redis.call('ZREVRANGEBYSCORE', KEYS[3], offset, '-inf', 'LIMIT', 0, 1)[1]
if claim then
  local last, owner = string.match(claim, '^%d+:(%d+):(.*)$')
  if tonumber(last) >= tonumber(offset) and owner ~= ARGV[2] then
    return {'superseded', 0, 0, 0}
  end
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local crashes = tonumber(redis.call('HGET', KEYS[5], offset) or '0')
local running = redis.call('HGET', KEYS[4], offset)
if running == ARGV[2] then
  -- the same dispatch began before and never ended: its worker process died under it
  crashes = redis.call('HINCRBY', KEYS[5], offset, 1)
elseif running then
  local left = tonumber(redis.call('HGET', KEYS[7], offset) or '0') - now_ms
  if left > 0 then return {'busy', 0, 0, left} end
  -- an older dispatch's run began, never ended, and its lease ran out: it died (or was killed)
  crashes = redis.call('HINCRBY', KEYS[5], offset, 1)
end
redis.call('HSET', KEYS[4], offset, ARGV[2])
redis.call('HSET', KEYS[7], offset, now_ms + tonumber(ARGV[3]))
for i = 4, 7 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
return {'run', tonumber(redis.call('HGET', KEYS[6], offset) or '0'), crashes, 0}
