-- A dead letter of a group was resolved (requeued and handled), or a whole outage group recovered.
-- KEYS[1] member key (dead letter id -> gid) or '', KEYS[2] due schedule; ARGV[1] key prefix, ARGV[2] gid or '',
-- ARGV[3] update_interval
local gid = ARGV[2]
if gid == '' then
  gid = redis.call('GET', KEYS[1])
  if not gid then return 0 end
  redis.call('DEL', KEYS[1])
end
local group = ARGV[1] .. ':g:' .. gid
if redis.call('EXISTS', group) == 0 then return 0 end
if ARGV[2] == '' then
  redis.call('HINCRBY', group, 'resolved', 1)
else
  redis.call('HSET', group, 'resolved', redis.call('HGET', group, 'count'))
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local sent_at = redis.call('HGET', group, 'sent_at')
local due = now
if sent_at then due = math.max(now, tonumber(sent_at) + tonumber(ARGV[3])) end
redis.call('ZADD', KEYS[2], 'LT', due, gid)
return 1
