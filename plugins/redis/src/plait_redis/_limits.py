"""Rate limits shared by every process that uses one Redis (``RateLimit(shared=True)``).

Each limits key has three keys of its own, and a turn is one atomic Lua script, so any
number of processes take turns without races and without locks:

* ``P:ratelimit:{key}`` (sorted set): each call's ticket, scored by the start reserved for
  it (server time, seconds), for the sliding window of ``requests_per_minute`` and
  ``tokens_per_minute``; entries older than the window are dropped as turns are taken;
* ``P:ratelimit-tokens:{key}`` (hash): ticket -> its tokens (the estimate, then the usage
  the provider reported);
* ``P:ratelimit-slots:{key}`` (sorted set): the tickets holding a ``max_concurrent`` slot,
  scored by when the slot's lease ends (a process that dies holding one frees it then).

The reservation is :func:`plait._limits.next_start`, computed here in Lua on the server's
clock (``TIME``): the earliest start, not before the last reservation, at which the window
ending there holds fewer calls than ``requests_per_minute`` and, with this call, at most
``tokens_per_minute`` tokens. Every key expires once its window (or lease) is over.
"""

from __future__ import annotations

__all__ = ["RETURN_SCRIPT", "SLOT_LEASE", "TAKE_SCRIPT"]

#: seconds a ``max_concurrent`` slot is held at most: a process that dies holding one frees it
#: after this (a call still running then no longer holds it)
SLOT_LEASE = 600.0

#: KEYS: reservations, tokens, slots; ARGV: ticket, tokens, window, requests_per_minute,
#: tokens_per_minute, max_concurrent ("" when not set), slot lease. Returns nil when every
#: slot is taken (nothing changed), else {seconds until the reserved start, the limit that set it}.
TAKE_SCRIPT = """
local ticket = ARGV[1]
local tokens = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local rpm = tonumber(ARGV[4])
local tpm = tonumber(ARGV[5])
local slots = tonumber(ARGV[6])
local lease = tonumber(ARGV[7])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
if slots then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= slots then
    return false
  end
end
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
if #old > 0 then
  for _, id in ipairs(old) do
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
end
local flat = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local n = #flat / 2
local start, holding = now, ''
if n > 0 and tonumber(flat[2 * n]) > start then
  start = tonumber(flat[2 * n])
end
if rpm then
  local allowed = math.floor(rpm)
  if n >= allowed then
    local at = tonumber(flat[2 * (n - allowed + 1)]) + window
    if at > start then
      start, holding = at, 'requests_per_minute'
    end
  end
end
if tpm and n > 0 then
  local counts = {}
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    counts[all[i]] = tonumber(all[i + 1])
  end
  local used = 0
  for i = 1, n do
    used = used + (counts[flat[2 * i - 1]] or 0)
  end
  if used + tokens > tpm then
    local excess = used + tokens - tpm
    local freed = 0
    local at = tonumber(flat[2 * n]) + window
    for i = 1, n do
      freed = freed + (counts[flat[2 * i - 1]] or 0)
      if freed >= excess then
        at = tonumber(flat[2 * i]) + window
        break
      end
    end
    if at > start then
      start, holding = at, 'tokens_per_minute'
    end
  end
end
if start > now and holding == '' then
  if rpm then holding = 'requests_per_minute' else holding = 'tokens_per_minute' end
end
redis.call('ZADD', KEYS[1], start, ticket)
redis.call('HSET', KEYS[2], ticket, tokens)
local ttl = math.ceil((start - now + window) * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
if slots then
  redis.call('ZADD', KEYS[3], start + lease, ticket)
  redis.call('PEXPIRE', KEYS[3], math.ceil((start - now + lease) * 1000) + 1000)
end
return {string.format('%.6f', start - now), holding}
"""

#: KEYS: reservations, tokens, slots; ARGV: ticket, tokens reported ("" keeps the estimate),
#: sent ("0": the call never went, its reservation goes).
RETURN_SCRIPT = """
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[3] == '0' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
elseif ARGV[2] ~= '' and redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 1
"""
