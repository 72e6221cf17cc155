-- After a look at a group: record what was sent and schedule the next look, or end the group.
-- KEYS[1] group hash, KEYS[2] examples, KEYS[3] due schedule, KEYS[4] lock
-- ARGV: gid, lock token, action ('sent' | 'close' | 'retry'), sent count, sent resolved, message id,
--       update_interval, quiet_after, retry delay
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local result = 1
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[9]), ARGV[1])
elseif ARGV[3] == 'close' and tonumber(redis.call('HGET', KEYS[1], 'count') or 0) == tonumber(ARGV[4]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
else  -- sent, or a close that found new events: they are sent at the next look
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'message_id', ARGV[6]) end
  if ARGV[3] == 'sent' then
    redis.call('HSET', KEYS[1], 'sent', ARGV[4], 'sent_resolved', ARGV[5], 'sent_at', now)
  else
    result = 0
  end
  local count = tonumber(redis.call('HGET', KEYS[1], 'count'))
  local resolved = tonumber(redis.call('HGET', KEYS[1], 'resolved'))
  local due
  if count > tonumber(redis.call('HGET', KEYS[1], 'sent')) or resolved > tonumber(redis.call('HGET', KEYS[1], 'sent_resolved')) then
    due = now + tonumber(ARGV[7])
  else
    due = tonumber(redis.call('HGET', KEYS[1], 'touched')) + tonumber(ARGV[8])
  end
  redis.call('ZADD', KEYS[3], due, ARGV[1])
end
if redis.call('GET', KEYS[4]) == ARGV[2] then redis.call('DEL', KEYS[4]) end
return result
