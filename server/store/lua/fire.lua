-- Fire one trigger: once per occasion, within the customer's rate limit, atomically with its
-- stream entry; optionally retire the cart timer that led to it.
-- KEYS: fired (the shopper's zset of occasions), triggers stream, timers  -- the shard's {g:n} slot
-- ARGV: now_ms, trigger id ('' : only the timer), limit (fires per window), window_ms,
--       remember_ms, stream maxlen, shopper digest, payload (JSON),
--       timer member ('' : none), the timer's due time as read (it is removed only if still due
--       then: an add-to-cart since has moved it later)
-- Returns {status, entry id}: 1 fired (the stream entry's id), 0 this occasion was fired or
-- suppressed before (a retry, another worker), 2 suppressed now by the rate limit.
-- The zset's members are '1:' .. id (fired) and '0:' .. id (suppressed), scored by time: the
-- dedup of occasions for remember_ms and the count of fires in the window, in one small key.
local fired, stream, timers = KEYS[1], KEYS[2], KEYS[3]
local now, id = tonumber(ARGV[1]), ARGV[2]
local limit, window, remember, maxlen = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if not (now and limit and window and remember and maxlen) then return redis.error_reply('ERR bad arguments') end
for k, want in ipairs({'zset', 'stream', 'zset'}) do
  local t = redis.call('TYPE', KEYS[k])['ok']
  if t ~= 'none' and t ~= want then return redis.error_reply('WRONGTYPE trigger key ' .. k .. ' holds a ' .. t) end
end

if ARGV[9] ~= '' then
  local due = redis.call('ZSCORE', timers, ARGV[9])
  if due and tonumber(due) <= tonumber(ARGV[10]) then redis.call('ZREM', timers, ARGV[9]) end
end
if id == '' then return {0, false} end
if redis.call('ZSCORE', fired, '1:' .. id) or redis.call('ZSCORE', fired, '0:' .. id) then return {0, false} end
redis.call('ZREMRANGEBYSCORE', fired, '-inf', now - remember)
local recent, count = redis.call('ZRANGEBYSCORE', fired, now - window, '+inf'), 0
for _, m in ipairs(recent) do
  if string.sub(m, 1, 2) == '1:' then count = count + 1 end
end
if count >= limit then
  redis.call('ZADD', fired, now, '0:' .. id)
  redis.call('PEXPIRE', fired, remember)
  return {2, false}
end
local entry = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 't', ARGV[7], 'j', ARGV[8])
redis.call('ZADD', fired, now, '1:' .. id)
redis.call('PEXPIRE', fired, remember)
return {1, entry}
