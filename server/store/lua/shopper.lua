-- Apply a batch of one shopper's events to their live state, once per event_id.
-- Returns the events' indices (1-based) that were new for this shopper.
-- KEYS: recent, bought, returned, aff, ids (current bucket), ids (previous bucket)
--       -- one hash slot: the shopper's
-- ARGV: ttl_s, recent_cap, affinity_half_life_ms, ids_ttl_s, then 8 per event:
--       event_id, item_id ('' if none), type, ts_ms, quantity, category ('' if none),
--       affinity_weight, recent_entry (msgpack, '' when the event doesn't enter `recent`)
local ttl, cap, half_life = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ids_ttl = tonumber(ARGV[4])
local applied = {}
for i = 5, #ARGV, 8 do
  local id, item, typ, ts = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local qty, cat, w, entry = tonumber(ARGV[i + 4]), ARGV[i + 5], tonumber(ARGV[i + 6]), ARGV[i + 7]
  if redis.call('HEXISTS', KEYS[6], id) == 0 and redis.call('HSETNX', KEYS[5], id, 1) == 1 then
    applied[#applied + 1] = (i - 5) / 8 + 1
    if entry ~= '' then redis.call('LPUSH', KEYS[1], entry) end
    if typ == 'purchase' then
      redis.call('HINCRBY', KEYS[2], item, qty)
    elseif typ == 'return' then
      redis.call('HINCRBY', KEYS[2], item, -qty)
      redis.call('SADD', KEYS[3], item)
    end
    if cat ~= '' and w > 0 then
      -- Decayed counter: value and time stored together; events may arrive out of order.
      local s = tonumber(redis.call('HGET', KEYS[4], 's:' .. cat) or '0')
      local t = tonumber(redis.call('HGET', KEYS[4], 't:' .. cat) or ts)
      if ts >= t then
        s = s * math.pow(2, -(ts - t) / half_life) + w
        t = ts
      else
        s = s + w * math.pow(2, -(t - ts) / half_life)
      end
      redis.call('HSET', KEYS[4], 's:' .. cat, tostring(s), 't:' .. cat, t)
    end
  end
end
redis.call('LTRIM', KEYS[1], 0, cap - 1)
for k = 1, 4 do redis.call('EXPIRE', KEYS[k], ttl) end
redis.call('EXPIRE', KEYS[5], ids_ttl)
return applied
