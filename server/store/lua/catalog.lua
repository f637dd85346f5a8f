-- Merge updates into live catalog records and log which items changed (server/catalog/store.py).
-- KEYS: items hash, change log stream
-- ARGV: log max length, then per item: item_id, fields to set (msgpack map field -> msgpack
--       value, kept as opaque bytes here), fields to clear (msgpack array of names).
-- A record is a msgpack map of the fields set; one left empty is deleted. Returns the log entry
-- id. Atomic, so two writers of one item never lose each other's fields.
local ids = {}
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  local raw = redis.call('HGET', KEYS[1], id)
  local record = raw and cmsgpack.unpack(raw) or {}
  for field, value in pairs(cmsgpack.unpack(ARGV[i + 1])) do record[field] = value end
  for _, field in ipairs(cmsgpack.unpack(ARGV[i + 2])) do record[field] = nil end
  if next(record) == nil then
    redis.call('HDEL', KEYS[1], id)
  else
    redis.call('HSET', KEYS[1], id, cmsgpack.pack(record))
  end
  ids[#ids + 1] = id
end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'ids', cmsgpack.pack(ids))
