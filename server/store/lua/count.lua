-- Add one conversion to an experiment's counters, idempotently: a unit's conversion is counted
-- once, a goal event's revenue once per unit.
-- KEYS: conversion-counted mark, revenue-counted mark, the day's counters hash, the days set
--       -- the experiment's slot
-- ARGV: mark_ttl_s, revenue_mark_ttl_s, day, variant, first (0/1), revenue, revenue_sq, pre
local v, first = ARGV[4], tonumber(ARGV[5])
local revenue, sq, pre = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local counted = 0
if first == 1 and redis.call('SET', KEYS[1], 1, 'NX', 'EX', tonumber(ARGV[1])) then
  redis.call('HINCRBY', KEYS[3], v .. '|conversions', 1)
  if pre ~= 0 then redis.call('HINCRBYFLOAT', KEYS[3], v .. '|pre_conv', pre) end
  counted = 1
end
if revenue ~= 0 and redis.call('SET', KEYS[2], 1, 'NX', 'EX', tonumber(ARGV[2])) then
  redis.call('HINCRBYFLOAT', KEYS[3], v .. '|revenue', revenue)
  redis.call('HINCRBYFLOAT', KEYS[3], v .. '|revenue_sq', sq)
  if pre ~= 0 then redis.call('HINCRBYFLOAT', KEYS[3], v .. '|pre_rev', pre * revenue) end
  counted = 1
end
if counted == 1 then redis.call('SADD', KEYS[4], ARGV[3]) end
return counted
