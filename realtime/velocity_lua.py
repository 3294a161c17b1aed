"""The Lua scripts of realtime.velocity: one round trip each (see that module for the key layout).

`LUA_DECIDE` claims the txn id, reads and updates every velocity window, reads the cached graph
risk and statistics and keeps the user's day and spike windows; `LUA_RECORD` / `LUA_REPLAY`
store a decision and append it to the stream, once.
"""

from __future__ import annotations

from realtime.features import SPIKE_RATIO
from realtime.keys import (
    VEL_DAY_TTL_S,
    VEL_HOUR_TTL_LONG_S,
    VEL_HOUR_TTL_SHORT_S,
    VEL_LAST_TTL_S,
    VEL_MIN_TTL_S,
    VEL_SEEN_MAX,
    VEL_SEEN_TTL_S,
    VEL_SPIKE_TTL_S,
)

#: the bounds of realtime.keys, as Lua locals
_LUA_BOUNDS = (
    f"local SPIKE_RATIO = {SPIKE_RATIO!r}\n"
    f"local TTL_MIN, TTL_SEEN, SEEN_MAX = {VEL_MIN_TTL_S}, {VEL_SEEN_TTL_S}, {VEL_SEEN_MAX}\n"
    f"local TTL_LAST, TTL_DAY, TTL_SPIKE = {VEL_LAST_TTL_S}, {VEL_DAY_TTL_S}, {VEL_SPIKE_TTL_S}\n"
    f"local TTL_HOUR_LONG, TTL_HOUR_SHORT = {VEL_HOUR_TTL_LONG_S}, {VEL_HOUR_TTL_SHORT_S}\n"
)

_LUA_ARGS = r"""
-- ARGV[1] packs the fields, tab-separated (ids are printable, so never contain a tab): one
-- argument to encode instead of thirteen.
local A = {}
for part in string.gmatch(ARGV[1] .. '\t', '([^\t]*)\t') do A[#A + 1] = part end
local ts_s = A[1]
local ts = tonumber(A[1])
local amount = A[2]
local bm = tonumber(A[3])
local bh = tonumber(A[4])
local pending_ttl = A[5]
local since7 = A[6]
local since30 = A[7]
local ids = {A[8], A[9], A[10], A[11], A[12]}
-- Keys are built here from the prefix (A[13]) with realtime.keys' layout, which saves encoding
-- 22 arguments per call. Standalone Redis only: Redis Cluster runs realtime.cluster's script,
-- one call per entity, instead.
local p = A[13]
local kinds = {'user', 'card', 'device', 'ip', 'merchant'}
local function tag(e)
  local id = ids[e]
  if id == '' then id = '-' end
  return '{' .. kinds[e] .. ':' .. id .. '}'
end
local K = {KEYS[1], KEYS[2]}
for e = 1, 5 do
  local v = p .. 'vel:' .. tag(e) .. ':'
  K[2 + e] = p .. 'risk:' .. tag(e)
  K[6 + 2 * e] = v .. 'min'
  K[7 + 2 * e] = v .. 'hour'
end
local function vk(e, window)
  return p .. 'vel:' .. tag(e) .. ':' .. window
end
K[18] = vk(1, 'last')
K[19] = vk(1, 'seen:device')
K[20] = vk(1, 'seen:card')
K[21] = vk(1, 'seen:ip')
K[22] = vk(3, 'seen:user')
K[23] = vk(4, 'seen:user')
K[24] = vk(2, 'seen:user')
-- per kind (user, card, device, ip, merchant): amounts kept in min / hour, hour buckets kept
local min_amt = {true, false, false, false, false}
local hour_amt = {true, true, true, true, false}
local hour_keep = {167, 167, 23, 23, 23}
local hour_ttl = {TTL_HOUR_LONG, TTL_HOUR_LONG, TTL_HOUR_SHORT, TTL_HOUR_SHORT, TTL_HOUR_SHORT}
"""

# The window helpers (sum_hash, bump, seen_write, fmt), shared with realtime.cluster's script;
# they read `amount`, `ts`, `ts_s`, `bh` and `since30` from the script's locals.
LUA_WINDOWS = r"""

local function sum_hash(key, lo, hi, lo2)
  local flat = redis.call('HGETALL', key)
  local n, a, n2, a2 = 0, 0, 0, 0
  local stale = {}
  for i = 1, #flat, 2 do
    local f = flat[i]
    local b = tonumber(string.sub(f, 2))
    if b then
      if b < lo2 then
        stale[#stale + 1] = f
      elseif b <= hi then
        local v = tonumber(flat[i + 1])
        if string.sub(f, 1, 1) == 'n' then
          n2 = n2 + v
          if b >= lo then n = n + v end
        else
          a2 = a2 + v
          if b >= lo then a = a + v end
        end
      end
    end
  end
  return n, a, n2, a2, stale
end

local function bump(key, b, with_amount, ttl, stale)
  redis.call('HINCRBY', key, 'n' .. b, 1)
  if with_amount then redis.call('HINCRBYFLOAT', key, 'a' .. b, amount) end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  redis.call('EXPIRE', key, ttl)
end

local function seen_write(key, member)
  redis.call('ZADD', key, 'GT', ts_s, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. since30)
  redis.call('ZREMRANGEBYRANK', key, 0, -(SEEN_MAX + 1))
  redis.call('EXPIRE', key, TTL_SEEN)
end

local function fmt(x)
  if x == nil then return '' end
  return string.format('%.17g', x)
end

-- The user's last 30 calendar days (count, mean amount) and amount spikes over 7 / 14 days,
-- appended to `out` (state before this transaction), then this transaction applied: a spike is
-- a transaction over SPIKE_RATIO times the user's cached median (`median_raw`) as known then.
-- `dk` / `sk`: the user's day and spike keys; `member`: the spike's member (its decision key).
local function user_windows_at(out, median_raw, dk, sk, member)
  local bd = math.floor(ts / 86400)
  local n30, a30, _, _, stale_day = sum_hash(dk, bd - 29, bd, bd - 29)
  out[#out + 1] = fmt(n30)
  if n30 > 0 then out[#out + 1] = fmt(a30 / n30) else out[#out + 1] = '' end
  out[#out + 1] = fmt(redis.call('ZCOUNT', sk, (bh - 167) * 3600, ts_s))
  out[#out + 1] = fmt(redis.call('ZCOUNT', sk, (bh - 335) * 3600, ts_s))
  bump(dk, bd, true, TTL_DAY, stale_day)
  local median = tonumber(median_raw or '')
  if median and median > 0 and tonumber(amount) > SPIKE_RATIO * median then
    redis.call('ZADD', sk, ts_s, member)
  end
  redis.call('ZREMRANGEBYSCORE', sk, '-inf', '(' .. ((bh - 335) * 3600))
  redis.call('EXPIRE', sk, TTL_SPIKE)
end
"""

_LUA_VELOCITY = r"""

-- Reads every window (state before this transaction), then applies it. Returns the feature
-- strings in realtime.features.VELOCITY_FEATURES order ('' = missing).
local function velocity()
  local out = {}
  local stale_min, stale_hour = {}, {}
  local agg = {}
  for e = 1, 5 do
    if ids[e] ~= '' then
      local n1, a1, _, _, sm = sum_hash(K[6 + 2 * e], bm - 59, bm, bm - 59)
      local n24, a24, n7, a7, sh = sum_hash(K[7 + 2 * e], bh - 23, bh, bh - hour_keep[e])
      agg[e] = {n1, a1, n24, a24, n7, a7}
      stale_min[e], stale_hour[e] = sm, sh
    end
  end
  local function g(e, i) if agg[e] then return agg[e][i] end return nil end
  -- user: n_1h n_24h n_7d amt_1h amt_24h amt_7d
  out[#out + 1] = fmt(g(1, 1)); out[#out + 1] = fmt(g(1, 3)); out[#out + 1] = fmt(g(1, 5))
  out[#out + 1] = fmt(g(1, 2)); out[#out + 1] = fmt(g(1, 4)); out[#out + 1] = fmt(g(1, 6))
  -- card: n_1h n_24h n_7d amt_24h
  out[#out + 1] = fmt(g(2, 1)); out[#out + 1] = fmt(g(2, 3)); out[#out + 1] = fmt(g(2, 5))
  out[#out + 1] = fmt(g(2, 4))
  -- device, ip: n_1h n_24h amt_24h
  for e = 3, 4 do
    out[#out + 1] = fmt(g(e, 1)); out[#out + 1] = fmt(g(e, 3)); out[#out + 1] = fmt(g(e, 4))
  end
  -- merchant: n_1h n_24h
  out[#out + 1] = fmt(g(5, 1)); out[#out + 1] = fmt(g(5, 3))
  -- distinct counts: user's devices, cards, ips; users of device, ip, card
  local seen_keys = {K[19], K[20], K[21], K[22], K[23], K[24]}
  local seen_owner = {1, 1, 1, 3, 4, 2}
  local seen_member = {ids[3], ids[2], ids[4], ids[1], ids[1], ids[1]}
  for s = 1, 6 do
    if ids[seen_owner[s]] ~= '' then
      out[#out + 1] = fmt(redis.call('ZCOUNT', seen_keys[s], since7, '+inf'))
    else
      out[#out + 1] = ''
    end
  end
  -- seconds since the user's previous transaction
  local last = redis.call('GET', K[18])
  if last then out[#out + 1] = fmt(ts - tonumber(last)) else out[#out + 1] = '' end
  -- first use of device, card, ip by this user within 30 days
  local firsts = {{K[19], ids[3]}, {K[20], ids[2]}, {K[21], ids[4]}}
  for _, p in ipairs(firsts) do
    if p[2] ~= '' then
      local s = redis.call('ZSCORE', p[1], p[2])
      if s and tonumber(s) >= tonumber(since30) then out[#out + 1] = '0'
      else out[#out + 1] = '1' end
    else
      out[#out + 1] = ''
    end
  end
  -- apply this transaction
  for e = 1, 5 do
    if ids[e] ~= '' then
      bump(K[6 + 2 * e], bm, min_amt[e], TTL_MIN, stale_min[e])
      bump(K[7 + 2 * e], bh, hour_amt[e], hour_ttl[e], stale_hour[e])
    end
  end
  for s = 1, 6 do
    if ids[seen_owner[s]] ~= '' and seen_member[s] ~= '' then
      seen_write(seen_keys[s], seen_member[s])
    end
  end
  if (not last) or ts > tonumber(last) then
    redis.call('SET', K[18], ts_s, 'EX', TTL_LAST)
  end
  return out
end

local function user_windows(out, median_raw)
  user_windows_at(out, median_raw, vk(1, 'day'), vk(1, 'spike'), KEYS[1])
end
"""

_LUA_COMMON = _LUA_BOUNDS + _LUA_ARGS + LUA_WINDOWS + _LUA_VELOCITY

# KEYS: 1 decision, 2 stream. The script derives K 3..7 risk, 8..17 min/hour per kind, 18 last,
# 19..24 seen sets from the prefix.
# ARGV[1]: tab-joined 1 ts, 2 amount, 3 minute bucket, 4 hour bucket, 5 pending ttl, 6 ts-7d,
#       7 ts-30d, 8..12 ids (user, card, device, ip, merchant; '' when absent), 13 key prefix.
LUA_DECIDE = (
    _LUA_COMMON
    + r"""
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur == 'pending' then return {'pending'} end
  return {'dup', cur}
end
redis.call('SET', KEYS[1], 'pending', 'EX', pending_ttl)
local out = velocity()
local risk_keys = {}
for e = 1, 5 do
  if ids[e] ~= '' then risk_keys[#risk_keys + 1] = K[2 + e] end
end
local risks = {}
if #risk_keys > 0 then risks = redis.call('MGET', unpack(risk_keys)) end
local r = 1
for e = 1, 5 do
  if ids[e] ~= '' then
    out[#out + 1] = risks[r] or ''
    r = r + 1
  else
    out[#out + 1] = ''
  end
end
local st = redis.call('MGET', p .. 'stats:' .. tag(5), p .. 'stats:' .. tag(1))
out[#out + 1] = st[1] or ''
out[#out + 1] = st[2] or ''
user_windows(out, st[2])
-- block / allow / step-up list entries of the five entities (realtime.lists), expiring keys
local lk = {}
for e = 1, 5 do
  local id = ids[e]
  if id == '' then id = '-' end
  lk[e] = p .. 'list:' .. kinds[e] .. ':' .. id
end
local ls = redis.call('MGET', unpack(lk))
for e = 1, 5 do
  if ids[e] ~= '' then out[#out + 1] = ls[e] or '' else out[#out + 1] = '' end
end
table.insert(out, 1, 'ok')
return out
"""
)

# Same KEYS/ARGV[1] as decide, plus ARGV 2 stored decision, 3 stream record, 4 decision ttl,
# 5-7 the review queue as in LUA_RECORD.
# Applies velocity and the user's windows only when the decision key is missing (the decide
# script never ran).
LUA_REPLAY = (
    _LUA_COMMON
    + r"""
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= 'pending' then return 0 end
if not cur then
  user_windows(velocity(), redis.call('GET', p .. 'stats:' .. tag(1)))
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[4])
redis.call('XADD', KEYS[2], '*', 'd', ARGV[3])
if ARGV[5] and ARGV[5] ~= '' then redis.call('ZADD', ARGV[5], ARGV[6], ARGV[7]) end
return 1
"""
)

# KEYS: 1 decision, 2 stream. ARGV: 1 stored decision, 2 stream record, 3 ttl, then for a
# `review` the review queue's key, the decision time and the txn id ('' otherwise).
LUA_RECORD = r"""
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= 'pending' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
if ARGV[4] and ARGV[4] ~= '' then redis.call('ZADD', ARGV[4], ARGV[5], ARGV[6]) end
return 1
"""
