"""The Lua script of :meth:`RedisStorage.claim_next <plait_redis.RedisStorage.claim_next>`.

Redis runs a script alone, so checking a candidate's status and lease and writing the new
lease is one atomic step: two workers never claim one run, and a lease renewal (a WATCHed
compare-and-set of the same key) that raced the claim fails and retries against it.

KEYS: the candidates' lease keys, then their run hashes, in the order to try them.
ARGV: now, the statuses that may be claimed (space-separated), the limits as JSON
(``{"limits": {workflow_id: N}, "indexes": [the status index keys a limit counts]}``), the key
prefix of leases and of run hashes (a run id follows each), then for each candidate its new
lease record's JSON cut in two around the version number (the stored version + 1 goes
between). A candidate whose workflow has N runs under a live lease (counted here, in the same
atomic step, from the QUEUED and RUNNING indexes) is passed over.
Returns the 1-based index of the candidate claimed, 0 for none.
"""

from __future__ import annotations

__all__ = ["CLAIM_SCRIPT"]

CLAIM_SCRIPT = """
local now = tonumber(ARGV[1])
local claimable = {}
for status in string.gmatch(ARGV[2], '%S+') do claimable[status] = true end
local config = cjson.decode(ARGV[3])
local lease_prefix, run_prefix = ARGV[4], ARGV[5]
local function live(raw)
  if not raw then return false end
  local state = cjson.decode(raw)['state']
  return type(state) == 'table' and (tonumber(state['expires_at']) or 0) > now
end
local places = {}
local function room(workflow_id)
  if places[workflow_id] == nil then
    local cap = config['limits'][workflow_id]
    if cap == nil then
      places[workflow_id] = 1
    else
      local held = 0
      for _, index in ipairs(config['indexes']) do
        for _, run_id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
          if redis.call('HGET', run_prefix .. run_id, 'workflow_id') == workflow_id
              and live(redis.call('GET', lease_prefix .. run_id)) then
            held = held + 1
          end
        end
      end
      places[workflow_id] = tonumber(cap) - held
    end
  end
  return places[workflow_id]
end
local n = #KEYS / 2
for i = 1, n do
  local status = redis.call('HGET', KEYS[n + i], 'status')
  local workflow_id = redis.call('HGET', KEYS[n + i], 'workflow_id')
  if status and claimable[status] and (not workflow_id or room(workflow_id) > 0) then
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
      redis.call('SET', KEYS[i], ARGV[4 + 2 * i] .. tostring(version + 1) .. ARGV[5 + 2 * i])
      return i
    end
  end
end
return 0
"""
