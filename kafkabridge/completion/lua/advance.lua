-- The bridge committed a partition's offset to Kafka (or was assigned a partition at that offset).
--
-- KEYS[1] floor     STRING  the partition's committed offset: everything below it is final
-- KEYS[2] done      ZSET    final offsets at or above the floor (score = offset)
-- KEYS[3] claims    ZSET    "first:last:token" per claimed range (score = first)
-- ARGV[1] offset    the committed offset (the next one to read)
-- ARGV[2] idle_ms   keys expire after this long without a write
--
-- The floor follows Kafka, backwards too (an operator may reset a group's offsets to replay).
-- Outcomes and claims wholly below it are dropped: the floor itself now says they are final.
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local floor = tonumber(ARGV[1])
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1])) do
  local last = tonumber(string.match(member, '^%d+:(%d+):'))
  if last < floor then redis.call('ZREM', KEYS[3], member) end
end
return 1
