-- Tracked messages reached their final outcome (handled, or stored as a dead letter).
--
-- KEYS[1] floor     STRING  the partition's committed offset
-- KEYS[2] done      ZSET    final offsets at or above the floor (score = offset)
-- KEYS[3..6]        HASH    running, crashes, attempts, lease: the per-message state, now dropped
-- ARGV[1] idle_ms   keys expire after this long without a write
-- ARGV[2..]         offsets
--
-- Offsets below the floor are final already and are not added again. Claims stay until the floor
-- passes them (advance.lua). Returns how many were added.
local floor = tonumber(redis.call('GET', KEYS[1]) or '-1')
local added = 0
for i = 2, #ARGV do
  local offset = ARGV[i]
  if tonumber(offset) >= floor then
    added = added + redis.call('ZADD', KEYS[2], offset, offset)
  end
  for k = 3, 6 do redis.call('HDEL', KEYS[k], offset) end
end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return added
