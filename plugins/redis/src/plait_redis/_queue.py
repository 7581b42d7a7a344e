"""The Lua script of :meth:`RedisStorage.claim_next <plait_redis.RedisStorage.claim_next>`.

Redis runs a script alone, so checking a candidate's status and lease and writing the new
lease is one atomic step: two workers never claim one run, and a lease renewal (a WATCHed
compare-and-set of the same key) that raced the claim fails and retries against it.

KEYS: the candidates' lease keys, then their run hashes, in the order to try them.
ARGV: now, the statuses that may be claimed (space-separated), then for each candidate its
new lease record's JSON cut in two around the version number (the stored version + 1 goes
between).
Returns the 1-based index of the candidate claimed, 0 for none.
"""

from __future__ import annotations

__all__ = ["CLAIM_SCRIPT"]

CLAIM_SCRIPT = """
local now = tonumber(ARGV[1])
local claimable = {}
for status in string.gmatch(ARGV[2], '%S+') do claimable[status] = true end
local n = #KEYS / 2
for i = 1, n do
  local status = redis.call('HGET', KEYS[n + i], 'status')
  if status and claimable[status] then
    local raw = redis.call('GET', KEYS[i])
    local version = 0
    local free = true
    if raw then
      local held = cjson.decode(raw)
      version = tonumber(held['version']) or 0
      local state = held['state']
      if type(state) == 'table' and (tonumber(state['expires_at']) or 0) > now then
        free = false
      end
    end
    if free then
      redis.call('SET', KEYS[i], ARGV[1 + 2 * i] .. tostring(version + 1) .. ARGV[2 + 2 * i])
      return i
    end
  end
end
return 0
"""
