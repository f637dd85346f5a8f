-- Attribute one shopper's goal events to the experiments they were exposed to, once per event.
-- KEYS: assignments hash (experiment -> msgpack Assignment), applied hash (event_id -> msgpack
--       of the conversions it caused)  -- the shopper's slot
-- ARGV: applied_ttl_s, n_experiments, then 3 per experiment: key, goal event type,
--       attribution window (ms); then 4 per event: event_id, type, ts_ms, revenue
-- An Assignment is msgpack [variant, exposed_at, unit, pre?, converted?, revenue?] (trailing
-- defaults omitted, as server/experiments/records.py writes it). For each event returns the
-- list of its conversions, each [experiment, variant, unit, first (0/1), revenue, revenue_sq
-- delta, pre], whether computed now or by an earlier attempt (the applied hash keeps them, so
-- a retry re-sends the same counter updates, which are idempotent on their side).
local ttl, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local exps = {}
for e = 1, n do
  exps[e] = {ARGV[3 + 3 * (e - 1)], ARGV[4 + 3 * (e - 1)], tonumber(ARGV[5 + 3 * (e - 1)])}
end
local out = {}
for i = 3 + 3 * n, #ARGV, 4 do
  local id, typ, ts, revenue = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local done = redis.call('HGET', KEYS[2], id)
  if done then
    out[#out + 1] = done
  else
    local conv = {}
    for _, x in ipairs(exps) do
      if x[2] == typ then
        local raw = redis.call('HGET', KEYS[1], x[1])
        if raw then
          local a = cmsgpack.unpack(raw)
          local exposed, pre = tonumber(a[2]), tonumber(a[4] or 0)
          local converted, so_far = a[5] == true, tonumber(a[6] or 0)
          if exposed <= ts and ts <= exposed + x[3] then
            local first = converted and 0 or 1
            local sq = 2 * so_far * revenue + revenue * revenue
            conv[#conv + 1] = {x[1], a[1], a[3], first, revenue, sq, pre}
            redis.call('HSET', KEYS[1], x[1], cmsgpack.pack({a[1], exposed, a[3], pre, true, so_far + revenue}))
          end
        end
      end
    end
    local packed = cmsgpack.pack(conv)
    redis.call('HSET', KEYS[2], id, packed)
    out[#out + 1] = packed
  end
end
redis.call('EXPIRE', KEYS[2], ttl)
return out
