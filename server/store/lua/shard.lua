-- Accept events into one stream shard and its trending counters, once per shopper and event_id.
-- KEYS: stream, trending (overall), then per event: accepted-mark key, category trending key
--       (the overall key again when the event has no category) -- all in the shard's {g:n} slot.
-- ARGV: dedup_ttl_s, trend_ttl_s, trend_increment_scale, stream_maxlen (0 = unbounded),
--       trending_cap (members kept per sorted set),
--       then 3 per event: payload (msgpack Event), item_id ('' if none), trending weight
-- Returns the event_ids' indices (1-based) that were new.
local dedup_ttl, trend_ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local scale, maxlen, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function bound(key)
  -- Trim the tail in bulk, rarely: ZCARD is O(1), the trim amortised.
  if redis.call('ZCARD', key) > cap * 1.25 then redis.call('ZREMRANGEBYRANK', key, 0, -cap - 1) end
end
local new = {}
local n = (#KEYS - 2) / 2
for e = 1, n do
  local dkey, ckey = KEYS[2 + 2 * e - 1], KEYS[2 + 2 * e]
  local payload, item, w = ARGV[5 + 3 * e - 2], ARGV[5 + 3 * e - 1], tonumber(ARGV[5 + 3 * e])
  if redis.call('SET', dkey, 1, 'NX', 'EX', dedup_ttl) then
    new[#new + 1] = e
    if maxlen > 0 then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'e', payload)
    else
      redis.call('XADD', KEYS[1], '*', 'e', payload)
    end
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
redis.call('EXPIRE', KEYS[2], trend_ttl)
bound(KEYS[2])
return new
