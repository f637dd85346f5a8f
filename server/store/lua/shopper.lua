-- Apply a batch of one shopper's events to their live state, once per event, within bounds.
-- KEYS: recent, bought, returned, aff, bought_at, ids (current bucket), ids (previous bucket),
--       consent, plog, trig, sessions   -- one hash slot: the shopper's
-- ARGV: ttl_s, recent_cap, affinity_half_life_ms, ids_ttl_s, affinity_cap, affinity_bound,
--       purchases_cap, purchases_bound, event_budget,
--       consent_default (1/0), plog_cap, plog_ttl_s, sessions_cap, tracked_items,
--       view_min (0: rule off), view_min_price, view_window_ms, visits (1/0), track carts (1/0),
--       then 11 per event: event digest, item_id ('' if none or unknown), type, ts_ms, quantity,
--       category ('' if none or unknown), affinity_weight, recent_entry (msgpack, '' if none),
--       purchase_entry (msgpack, '' unless a purchase), unit price ('' if unknown),
--       session_id ('' when the shopper is the session itself)
-- Returns {statuses, signals}. One status per event: 1 applied, 0 applied before (a retry), 2 over
-- the shopper's budget of events per dedup period (left out of the live state; the stream still
-- takes it), 3 not stored: the shopper refused personalization (nothing is written about them).
-- Signals: 'event index|kind|episode|item' for the trigger rules an event completed ('views':
-- an item viewed view_min times in the window, not in the cart; 'visit': a signed-in shopper's
-- first event of a session). A signal is kept (as a short code) with the event's dedup entry, so
-- a retried event reports it again (the trigger itself is fired once: fire.lua remembers it).
--
-- All or nothing: every argument and every key's type is checked before the first write, and
-- the writes after that cannot fail, so a refused call leaves the shopper as it was and its
-- retry applies each event exactly once.
-- Bounded: `recent` keeps recent_cap entries; `aff` and `bought` grow to their bound (1.25 ×
-- cap) and are then cut back to the cap in one go (the weakest affinities, the least recently
-- bought or returned items), so the read script's cost is bounded whatever the input; `plog`
-- keeps plog_cap purchases, `sessions` sessions_cap sessions, `trig` tracked_items items.
local N, E = 19, 11
local ttl, cap, half_life, ids_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local aff_cap, aff_bound = tonumber(ARGV[5]), tonumber(ARGV[6])
local buy_cap, buy_bound, budget = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local consent_default, plog_cap, plog_ttl = ARGV[10] == '1', tonumber(ARGV[11]), tonumber(ARGV[12])
local sessions_cap, tracked = tonumber(ARGV[13]), tonumber(ARGV[14])
local view_min, view_price, view_window = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local visits, carts = ARGV[18] == '1', ARGV[19] == '1'

-- Checks first.
local function whole(x, lo, hi)
  return x ~= nil and x == x and x >= lo and x <= hi and math.floor(x) == x
end
local types = {'list', 'hash', 'set', 'hash', 'hash', 'hash', 'hash', 'hash', 'zset', 'hash', 'zset'}
for k = 1, 11 do
  local t = redis.call('TYPE', KEYS[k])['ok']
  if t ~= 'none' and t ~= types[k] then
    return redis.error_reply('WRONGTYPE shopper key ' .. k .. ' holds a ' .. t)
  end
end
if not (whole(plog_cap, 1, 1e6) and whole(plog_ttl, 1, 2 ^ 31) and whole(sessions_cap, 1, 1e6)
        and whole(tracked, 1, 1e6) and whole(view_min, 0, 1e6) and view_price and view_window) then
  return redis.error_reply('ERR bad customer arguments')
end
local kinds = {view = 1, add_to_cart = 1, remove_from_cart = 1, purchase = 1, ['return'] = 1,
               search = 1, category_view = 1}
if (#ARGV - N) % E ~= 0 then return redis.error_reply('ERR bad argument count') end
for i = N + 1, #ARGV, E do
  local e = (i - N - 1) / E + 1
  local w = tonumber(ARGV[i + 6])
  if not (kinds[ARGV[i + 2]] and whole(tonumber(ARGV[i + 3]), 0, 2 ^ 53)
          and whole(tonumber(ARGV[i + 4]), 1, 1e9) and w and w == w and w >= 0 and w < 1e9
          and (ARGV[i + 9] == '' or tonumber(ARGV[i + 9]))) then
    return redis.error_reply('ERR event ' .. e .. ': bad type, ts, quantity, weight or price')
  end
end

-- A shopper who refused personalization: nothing about them is written, not even a dedup id.
local choice = redis.call('HGET', KEYS[8], 'p')
local allowed
if choice then allowed = choice == '1' else allowed = consent_default end
local status, signals = {}, {}
if not allowed then
  for _ = N + 1, #ARGV, E do status[#status + 1] = 3 end
  return {status, signals}
end

-- Keys left oversized by an earlier version, or a cap lowered more than fourfold, are dropped
-- rather than sorted (the read script skips them meanwhile).
if redis.call('HLEN', KEYS[2]) > 4 * buy_bound or redis.call('SCARD', KEYS[3]) > buy_bound then
  redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[5])
end
if redis.call('HLEN', KEYS[4]) > 8 * aff_bound then redis.call('UNLINK', KEYS[4]) end

-- The trigger rules' state of one event (trig: views per item, the cart, the last purchase).
local function track(item, typ, ts, price, session)
  local found = {}
  if item ~= '' and typ == 'view' and view_min > 0 and price ~= '' and tonumber(price) >= view_price then
    local raw = redis.call('HGET', KEYS[10], 'v:' .. item)
    local count, since = 1, ts
    if raw then
      local c, s = string.match(raw, '^(%d+):(%d+)$')
      if c and ts - tonumber(s) <= view_window then count, since = tonumber(c) + 1, tonumber(s) end
    end
    redis.call('HSET', KEYS[10], 'v:' .. item, count .. ':' .. since)
    if count == view_min and redis.call('HEXISTS', KEYS[10], 'c:' .. item) == 0 then
      found[#found + 1] = 'w' .. since
    end
  elseif item ~= '' and carts and typ == 'add_to_cart' then
    redis.call('HSET', KEYS[10], 'c:' .. item, ts)
    if ts > tonumber(redis.call('HGET', KEYS[10], 'ca') or '-1') then redis.call('HSET', KEYS[10], 'ca', ts) end
  elseif item ~= '' and carts and typ == 'remove_from_cart' then
    redis.call('HDEL', KEYS[10], 'c:' .. item)
  elseif typ == 'purchase' and carts then
    if item ~= '' then redis.call('HDEL', KEYS[10], 'c:' .. item) end
    if ts > tonumber(redis.call('HGET', KEYS[10], 'pa') or '-1') then redis.call('HSET', KEYS[10], 'pa', ts) end
  end
  if session ~= '' then
    if visits and not redis.call('ZSCORE', KEYS[11], session) then found[#found + 1] = 'v' end
    redis.call('ZADD', KEYS[11], 'GT', ts, session)
  end
  return #found > 0 and table.concat(found, ',') or '1'
end

-- A signal from its compact code (kept with the event's dedup id, so its size stays bounded
-- whatever the ids: the item and the session come from the event itself).
local function report(e, codes, item, session)
  for code in string.gmatch(codes, '[^,]+') do
    if code == 'v' then
      signals[#signals + 1] = e .. '|visit|' .. session .. '|'
    elseif string.sub(code, 1, 1) == 'w' then
      signals[#signals + 1] = e .. '|views|' .. item .. ':' .. string.sub(code, 2) .. '|' .. item
    end
  end
end

-- Then the writes.
local left = budget - redis.call('HLEN', KEYS[6])
for i = N + 1, #ARGV, E do
  local e = (i - N - 1) / E + 1
  local digest, item, typ, ts = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local qty, cat, w, entry = tonumber(ARGV[i + 4]), ARGV[i + 5], tonumber(ARGV[i + 6]), ARGV[i + 7]
  local before = redis.call('HGET', KEYS[7], digest) or redis.call('HGET', KEYS[6], digest)
  if before then
    status[#status + 1] = 0
    if before ~= '1' then report(e, before, item, ARGV[i + 10]) end
  elseif left <= 0 then
    status[#status + 1] = 2
  else
    left = left - 1
    status[#status + 1] = 1
    if entry ~= '' then redis.call('LPUSH', KEYS[1], entry) end
    if item ~= '' and (typ == 'purchase' or typ == 'return') then
      redis.call('HINCRBY', KEYS[2], item, typ == 'purchase' and qty or -qty)
      if typ == 'return' then redis.call('SADD', KEYS[3], item) end
      if ts > tonumber(redis.call('HGET', KEYS[5], item) or '-1') then redis.call('HSET', KEYS[5], item, ts) end
    end
    if ARGV[i + 8] ~= '' then
      redis.call('ZADD', KEYS[9], ts, ARGV[i + 8])
      redis.call('EXPIRE', KEYS[9], plog_ttl)
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
    local codes = track(item, typ, ts, ARGV[i + 9], ARGV[i + 10])
    redis.call('HSET', KEYS[6], digest, codes)
    if codes ~= '1' then report(e, codes, item, ARGV[i + 10]) end
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
if redis.call('ZCARD', KEYS[9]) > plog_cap then redis.call('ZREMRANGEBYRANK', KEYS[9], 0, -plog_cap - 1) end
if redis.call('ZCARD', KEYS[11]) > sessions_cap + math.floor(sessions_cap / 4) then
  redis.call('ZREMRANGEBYRANK', KEYS[11], 0, -sessions_cap - 1)
end
if redis.call('HLEN', KEYS[10]) > 2 * tracked + 2 then
  -- Keep the `tracked` items viewed and carted last (views by the start of their window).
  local flat, views, cart = redis.call('HGETALL', KEYS[10]), {}, {}
  for j = 1, #flat, 2 do
    local kind = string.sub(flat[j], 1, 2)
    if kind == 'v:' then
      views[#views + 1] = {flat[j], tonumber(string.match(flat[j + 1], ':(%d+)$') or '0')}
    elseif kind == 'c:' then
      cart[#cart + 1] = {flat[j], tonumber(flat[j + 1]) or 0}
    end
  end
  for _, list in ipairs({views, cart}) do
    table.sort(list, function(a, b) return a[2] > b[2] end)
    for j = tracked + 1, #list do redis.call('HDEL', KEYS[10], list[j][1]) end
  end
end
for _, k in ipairs({1, 2, 3, 4, 5, 10, 11}) do redis.call('EXPIRE', KEYS[k], ttl) end
redis.call('EXPIRE', KEYS[6], ids_ttl)
return {status, signals}
