-- Count a unit's first exposure to an experiment, once per unit whatever the retries.
-- KEYS: exposure-counted mark, the day's counters hash, the days set  -- the experiment's slot
-- ARGV: mark_ttl_s, day, variant, pre (the unit's pre-exposure covariate)
-- Returns 1 when counted now, 0 when the unit was counted before.
if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
local v, pre = ARGV[3], tonumber(ARGV[4])
redis.call('HINCRBY', KEYS[2], v .. '|units', 1)
if pre ~= 0 then
  redis.call('HINCRBYFLOAT', KEYS[2], v .. '|pre', pre)
  redis.call('HINCRBYFLOAT', KEYS[2], v .. '|pre_sq', pre * pre)
end
redis.call('SADD', KEYS[3], ARGV[2])
return 1
