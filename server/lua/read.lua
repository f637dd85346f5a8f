-- A shopper's live state in one command (one slot): recent items, purchases, returns, affinity.
-- KEYS: recent, bought, returned, aff    ARGV: recent_cap
return {
  redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1),
  redis.call('HGETALL', KEYS[2]),
  redis.call('SMEMBERS', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
}
