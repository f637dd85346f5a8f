-- Accept events into one stream shard and its trending counters, once per shopper and event_id.
-- KEYS: stream, trending (overall), dropped-entries counter, then per event: accepted-mark key,
--       category trending key (the overall key again when the event has no known category)
--       -- all in the shard's {g:n} slot.
-- ARGV: dedup_ttl_s, trend_ttl_s, trend_increment_scale, stream_maxlen (0 = unbounded),
--       trending_cap (members kept per sorted set),
--       then 3 per event: payload (msgpack Event), item_id ('' if none or unknown), trending weight
-- Returns the events' indices (1-based) that were new.
-- All or nothing, as shopper.lua: arguments and key types are checked before the first write.
-- The stream is cut back to about stream_maxlen once per call (whole nodes: `~`), and what that
-- drops (never exported, unless the export ran with --keep) is added to the counter.
local H = 5
local dedup_ttl, trend_ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local scale, maxlen, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local n = (#KEYS - 3) / 2
if n ~= math.floor(n) or #ARGV ~= H + 3 * n or not (dedup_ttl and trend_ttl and scale and maxlen and cap) then
  return redis.error_reply('ERR bad arguments')
end
local function has_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  return t == 'none' or t == want
end
if not (has_type(KEYS[1], 'stream') and has_type(KEYS[2], 'zset') and has_type(KEYS[3], 'string')) then
  return redis.error_reply('WRONGTYPE a shard key holds the wrong type')
end
for e = 1, n do
  local w = tonumber(ARGV[H + 3 * e])
  if not (w and w == w and w >= 0 and w < 1e9 and has_type(KEYS[2 + 2 * e], 'string')
          and has_type(KEYS[3 + 2 * e], 'zset')) then
    return redis.error_reply('ERR event ' .. e .. ': bad weight or key type')
  end
end

local function bound(key)
  -- Trim the tail in bulk, rarely: ZCARD is O(1), the trim amortised.
  if redis.call('ZCARD', key) > cap * 1.25 then redis.call('ZREMRANGEBYRANK', key, 0, -cap - 1) end
end
local new = {}
for e = 1, n do
  local dkey, ckey = KEYS[2 + 2 * e], KEYS[3 + 2 * e]
  local payload, item, w = ARGV[H + 3 * e - 2], ARGV[H + 3 * e - 1], tonumber(ARGV[H + 3 * e])
  if redis.call('SET', dkey, 1, 'NX', 'EX', dedup_ttl) then
    new[#new + 1] = e
    redis.call('XADD', KEYS[1], '*', 'e', payload)
    if item ~= '' and w > 0 then
      redis.call('ZINCRBY', KEYS[2], w * scale, item)
      if ckey ~= KEYS[2] then
        redis.call('ZINCRBY', ckey, w * scale, item)
        redis.call('EXPIRE', ckey, trend_ttl)
        bound(ckey)
      end
    end
  end
end
if maxlen > 0 and redis.call('XLEN', KEYS[1]) > maxlen then
  local dropped = redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxlen)
  if dropped > 0 then redis.call('INCRBY', KEYS[3], dropped) end
end
redis.call('EXPIRE', KEYS[2], trend_ttl)
bound(KEYS[2])
return new
