-- Accept events into one stream shard and its trending counters, once per shopper and event_id.
-- KEYS: stream, trending (overall), dropped-entries counter, timers, then per event:
--       accepted-mark key, category trending key (the overall key again when the event has no
--       known category), the shopper's consent mark  -- all in the shard's {g:n} slot.
-- ARGV: dedup_ttl_s, trend_ttl_s, trend_increment_scale, stream_maxlen (0 = unbounded),
--       trending_cap (members kept per sorted set), consent_default (1/0),
--       then 5 per event: payload (msgpack Event), item_id ('' if none or unknown), trending weight,
--       shopper tag, cart timer's due time ('' unless an add_to_cart starts or moves one)
-- Returns the events' indices (1-based) that were new.
-- The consent mark mirrors the shopper's choice on their shard (a script can't read another
-- slot on a Redis Cluster): a shopper who refused personalization still counts in trending (an
-- anonymous aggregate), but their event enters no stream and starts no timer.
-- All or nothing, as shopper.lua: arguments and key types are checked before the first write.
-- The stream is cut back to about stream_maxlen once per call (whole nodes: `~`), and what that
-- drops (never exported, unless the export ran with --keep) is added to the counter.
local H, K, A = 6, 4, 5
local dedup_ttl, trend_ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local scale, maxlen, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local consent_default = ARGV[6] == '1'
local n = (#KEYS - K) / 3
if n ~= math.floor(n) or #ARGV ~= H + A * n or not (dedup_ttl and trend_ttl and scale and maxlen and cap) then
  return redis.error_reply('ERR bad arguments')
end
-- Each distinct key's type is asked once: a batch's events share their shoppers' consent marks
-- and their categories' trending keys (~100 TYPE calls fewer per 100-event batch).
local types = {}
local function has_type(key, want)
  local t = types[key]
  if t == nil then
    t = redis.call('TYPE', key)['ok']
    types[key] = t
  end
  return t == 'none' or t == want
end
if not (has_type(KEYS[1], 'stream') and has_type(KEYS[2], 'zset') and has_type(KEYS[3], 'string')
        and has_type(KEYS[4], 'zset')) then
  return redis.error_reply('WRONGTYPE a shard key holds the wrong type')
end
for e = 1, n do
  local a, k = H + A * (e - 1), K + 3 * (e - 1)
  local w, due = tonumber(ARGV[a + 3]), ARGV[a + 5]
  if not (w and w == w and w >= 0 and w < 1e9 and has_type(KEYS[k + 1], 'string')
          and has_type(KEYS[k + 2], 'zset') and has_type(KEYS[k + 3], 'string')
          and (due == '' or tonumber(due))) then
    return redis.error_reply('ERR event ' .. e .. ': bad weight, due time or key type')
  end
end

local function bound(key)
  -- Trim the tail in bulk, rarely: ZCARD is O(1), the trim amortised.
  if redis.call('ZCARD', key) > cap * 1.25 then redis.call('ZREMRANGEBYRANK', key, 0, -cap - 1) end
end
local new, consent, touched, categories = {}, {}, {}, {}
for e = 1, n do
  local a, k = H + A * (e - 1), K + 3 * (e - 1)
  local dkey, ckey, mkey = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local payload, item, w = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  if redis.call('SET', dkey, 1, 'NX', 'EX', dedup_ttl) then
    new[#new + 1] = e
    local allowed = consent[mkey]
    if allowed == nil then  -- the mark is only read here: once per shopper in the batch
      local choice = redis.call('GET', mkey)
      if choice then allowed = choice == '1' else allowed = consent_default end
      consent[mkey] = allowed
    end
    if allowed then
      redis.call('XADD', KEYS[1], '*', 'e', payload)
      if ARGV[a + 5] ~= '' then redis.call('ZADD', KEYS[4], 'GT', ARGV[a + 5], ARGV[a + 4]) end
    end
    if item ~= '' and w > 0 then
      redis.call('ZINCRBY', KEYS[2], w * scale, item)
      if ckey ~= KEYS[2] then
        redis.call('ZINCRBY', ckey, w * scale, item)
        if not touched[ckey] then
          touched[ckey] = true
          categories[#categories + 1] = ckey
        end
      end
    end
  end
end
-- Each category's key once per batch, after its increments: its lifetime and its size bound.
for _, ckey in ipairs(categories) do
  redis.call('EXPIRE', ckey, trend_ttl)
  bound(ckey)
end
if maxlen > 0 and redis.call('XLEN', KEYS[1]) > maxlen then
  local dropped = redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxlen)
  if dropped > 0 then redis.call('INCRBY', KEYS[3], dropped) end
end
redis.call('EXPIRE', KEYS[2], trend_ttl)
bound(KEYS[2])
return new
