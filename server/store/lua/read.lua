-- A shopper's live state in one command (one slot): recent items, purchases, returns, affinity,
-- and (with the customer keys) their consent and the purchases logged since the model.
-- KEYS: recent, bought, returned, aff[, consent, plog]
-- ARGV: recent_cap, now_ms, affinity_half_life_ms, purchases_bound, affinity_bound[, as_of_ms]
-- Returns {recent entries, items with a positive net purchase, returned items,
--          flat {category, affinity decayed to now_ms (as a string: Lua numbers reply as ints)}
--          [, {consent p, at, purposes}, purchase-log members after as_of_ms, oldest first]}.
-- Filtering and decaying here keeps that work off the server's event loop. The cost is bounded
-- by the caps whatever is stored: the write script keeps each key within its bound, and a key
-- beyond it (left by an earlier version) is skipped here, not walked.
local now, half_life = tonumber(ARGV[2]), tonumber(ARGV[3])
local buy_bound, aff_bound = tonumber(ARGV[4]), tonumber(ARGV[5])
local purchased, returned, affinity = {}, {}, {}
if redis.call('HLEN', KEYS[2]) <= buy_bound then
  local bought = redis.call('HGETALL', KEYS[2])
  for i = 1, #bought, 2 do
    if tonumber(bought[i + 1]) > 0 then purchased[#purchased + 1] = bought[i] end
  end
end
if redis.call('SCARD', KEYS[3]) <= buy_bound then returned = redis.call('SMEMBERS', KEYS[3]) end
if redis.call('HLEN', KEYS[4]) <= 2 * aff_bound then
  local aff, times = redis.call('HGETALL', KEYS[4]), {}
  for i = 1, #aff, 2 do
    if string.sub(aff[i], 1, 2) == 't:' then times[string.sub(aff[i], 3)] = tonumber(aff[i + 1]) end
  end
  for i = 1, #aff, 2 do
    if string.sub(aff[i], 1, 2) == 's:' then
      local cat = string.sub(aff[i], 3)
      local age = math.max(now - (times[cat] or now), 0)
      affinity[#affinity + 1] = cat
      affinity[#affinity + 1] = string.format('%.17g', tonumber(aff[i + 1]) * math.pow(2, -age / half_life))
    end
  end
end
local out = {
  redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1),
  purchased,
  returned,
  affinity,
}
if #KEYS == 6 then
  -- The purchase log is capped by the write script (purchase_log_cap), so this is bounded too.
  out[5] = redis.call('HMGET', KEYS[5], 'p', 'at', 'purposes')
  out[6] = redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. ARGV[6], '+inf')
end
return out
