-- Apply a batch of one shopper's events to their live state, once per event, within bounds.
-- KEYS: recent, bought, returned, aff, bought_at, ids (current bucket), ids (previous bucket)
--       -- one hash slot: the shopper's
-- ARGV: ttl_s, recent_cap, affinity_half_life_ms, ids_ttl_s, affinity_cap, affinity_bound,
--       purchases_cap, purchases_bound, event_budget, then 8 per event:
--       event digest, item_id ('' if none or unknown), type, ts_ms, quantity,
--       category ('' if none or unknown), affinity_weight, recent_entry (msgpack, '' if none)
-- Returns one status per event: 1 applied, 0 applied before (a retry), 2 over the shopper's
-- budget of events per dedup period (left out of the live state; the stream still takes it).
--
-- All or nothing: every argument and every key's type is checked before the first write, and
-- the writes after that cannot fail, so a refused call leaves the shopper as it was and its
-- retry applies each event exactly once.
-- Bounded: `recent` keeps recent_cap entries; `aff` and `bought` grow to their bound (1.25 ×
-- cap) and are then cut back to the cap in one go (the weakest affinities, the least recently
-- bought or returned items), so the read script's cost is bounded whatever the input.
local N = 9
local ttl, cap, half_life, ids_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local aff_cap, aff_bound = tonumber(ARGV[5]), tonumber(ARGV[6])
local buy_cap, buy_bound, budget = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])

-- Checks first.
local function whole(x, lo, hi)
  return x ~= nil and x == x and x >= lo and x <= hi and math.floor(x) == x
end
local types = {'list', 'hash', 'set', 'hash', 'hash', 'hash', 'hash'}
for k = 1, 7 do
  local t = redis.call('TYPE', KEYS[k])['ok']
  if t ~= 'none' and t ~= types[k] then
    return redis.error_reply('WRONGTYPE shopper key ' .. k .. ' holds a ' .. t)
  end
end
local kinds = {view = 1, add_to_cart = 1, remove_from_cart = 1, purchase = 1, ['return'] = 1,
               search = 1, category_view = 1}
if (#ARGV - N) % 8 ~= 0 then return redis.error_reply('ERR bad argument count') end
for i = N + 1, #ARGV, 8 do
  local e = (i - N - 1) / 8 + 1
  local w = tonumber(ARGV[i + 6])
  if not (kinds[ARGV[i + 2]] and whole(tonumber(ARGV[i + 3]), 0, 2 ^ 53)
          and whole(tonumber(ARGV[i + 4]), 1, 1e9) and w and w == w and w >= 0 and w < 1e9) then
    return redis.error_reply('ERR event ' .. e .. ': bad type, ts, quantity or weight')
  end
end

-- Keys left oversized by an earlier version, or a cap lowered more than fourfold, are dropped
-- rather than sorted (the read script skips them meanwhile).
if redis.call('HLEN', KEYS[2]) > 4 * buy_bound or redis.call('SCARD', KEYS[3]) > buy_bound then
  redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[5])
end
if redis.call('HLEN', KEYS[4]) > 8 * aff_bound then redis.call('UNLINK', KEYS[4]) end

-- Then the writes.
local status = {}
local left = budget - redis.call('HLEN', KEYS[6])
for i = N + 1, #ARGV, 8 do
  local digest, item, typ, ts = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local qty, cat, w, entry = tonumber(ARGV[i + 4]), ARGV[i + 5], tonumber(ARGV[i + 6]), ARGV[i + 7]
  if redis.call('HEXISTS', KEYS[7], digest) == 1 or redis.call('HEXISTS', KEYS[6], digest) == 1 then
    status[#status + 1] = 0
  elseif left <= 0 then
    status[#status + 1] = 2
  else
    redis.call('HSET', KEYS[6], digest, 1)
    left = left - 1
    status[#status + 1] = 1
    if entry ~= '' then redis.call('LPUSH', KEYS[1], entry) end
    if item ~= '' and (typ == 'purchase' or typ == 'return') then
      redis.call('HINCRBY', KEYS[2], item, typ == 'purchase' and qty or -qty)
      if typ == 'return' then redis.call('SADD', KEYS[3], item) end
      if ts > tonumber(redis.call('HGET', KEYS[5], item) or '-1') then redis.call('HSET', KEYS[5], item, ts) end
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
if redis.call('HLEN', KEYS[2]) > buy_bound then
  -- Keep the buy_cap items bought or returned last (an item without a time: first to go).
  local at, items = {}, redis.call('HKEYS', KEYS[2])
  local flat = redis.call('HGETALL', KEYS[5])
  for j = 1, #flat, 2 do at[flat[j]] = tonumber(flat[j + 1]) end
  table.sort(items, function(a, b) return (at[a] or -1) > (at[b] or -1) end)
  for j = buy_cap + 1, #items do
    redis.call('HDEL', KEYS[2], items[j])
    redis.call('HDEL', KEYS[5], items[j])
    redis.call('SREM', KEYS[3], items[j])
  end
end
if redis.call('HLEN', KEYS[4]) > 2 * aff_bound then
  -- Keep the aff_cap strongest. Every score decays at the same rate, so s·2^(t/h) orders them
  -- as their values at any common time would (compared as logs: 2^(t/h) overflows).
  local flat, score, cats = redis.call('HGETALL', KEYS[4]), {}, {}
  for j = 1, #flat, 2 do
    if string.sub(flat[j], 1, 2) == 's:' then
      local c = string.sub(flat[j], 3)
      cats[#cats + 1] = c
      score[c] = math.log(math.max(tonumber(flat[j + 1]), 1e-300)) / math.log(2)
    end
  end
  for j = 1, #flat, 2 do
    if string.sub(flat[j], 1, 2) == 't:' then
      local c = string.sub(flat[j], 3)
      score[c] = (score[c] or -1e300) + tonumber(flat[j + 1]) / half_life
    end
  end
  table.sort(cats, function(a, b) return score[a] > score[b] end)
  for j = aff_cap + 1, #cats do redis.call('HDEL', KEYS[4], 's:' .. cats[j], 't:' .. cats[j]) end
end
for k = 1, 5 do redis.call('EXPIRE', KEYS[k], ttl) end
redis.call('EXPIRE', KEYS[6], ids_ttl)
return status
