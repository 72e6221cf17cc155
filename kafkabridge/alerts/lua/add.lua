-- Record a batch of one group's events and schedule the group's next look.
-- KEYS[1] group hash, KEYS[2] examples list, KEYS[3] due schedule (zset gid -> epoch seconds)
-- ARGV: gid, kind, topic, exception, count, first, last (event times), window, update_interval,
--       max examples, then example JSON strings
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'kind', ARGV[2], 'topic', ARGV[3], 'exception', ARGV[4], 'count', 0, 'resolved', 0,
             'sent', 0, 'sent_resolved', 0, 'first', ARGV[6], 'last', ARGV[7], 'opened', now)
end
redis.call('HINCRBY', KEYS[1], 'count', ARGV[5])
redis.call('HSET', KEYS[1], 'touched', now)
if tonumber(ARGV[6]) < tonumber(redis.call('HGET', KEYS[1], 'first')) then redis.call('HSET', KEYS[1], 'first', ARGV[6]) end
if tonumber(ARGV[7]) > tonumber(redis.call('HGET', KEYS[1], 'last')) then redis.call('HSET', KEYS[1], 'last', ARGV[7]) end
local room = tonumber(ARGV[10]) - redis.call('LLEN', KEYS[2])
for i = 11, 10 + math.max(room, 0) do
  if ARGV[i] then redis.call('RPUSH', KEYS[2], ARGV[i]) end
end
local sent_at = redis.call('HGET', KEYS[1], 'sent_at')
local due
if sent_at then
  due = math.max(now, tonumber(sent_at) + tonumber(ARGV[9]))
else
  due = tonumber(redis.call('HGET', KEYS[1], 'opened')) + tonumber(ARGV[8])
end
redis.call('ZADD', KEYS[3], 'LT', due, ARGV[1])  -- LT: an earlier look wins; a new gid is added
return 1
