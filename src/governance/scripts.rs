//! The Lua scripts Redis runs for shared enforcement. Each runs atomically in Redis, so a check and
//! its reservation cannot interleave with another instance's.
//!
//! Keys, under `PREFIX:k:NAME:`: `day:N`, `month:N` and `total` (micro-dollars spent, reservations
//! in flight included), `rpm:MINUTE` and `tpm:MINUTE`, and `open`: a sorted set of the reservations
//! in flight, scored by when their concurrency lease ends.

/// ARGV: key prefix, now ms, minute, day, month, estimated tokens, estimated cost, limits (day,
/// month, total, concurrent, rpm, tpm; -1 for none), reservation id, lease end ms.
/// Returns `{"ok", day, month, total}` (spend after reserving) or `{RULE, current}`.
pub const ADMIT: &str = r#"
local p = ARGV[1]
local now = tonumber(ARGV[2])
local dk, mk, tk = p .. 'day:' .. ARGV[4], p .. 'month:' .. ARGV[5], p .. 'total'
local rk, uk, ok = p .. 'rpm:' .. ARGV[3], p .. 'tpm:' .. ARGV[3], p .. 'open'
local tokens, cost = tonumber(ARGV[6]), tonumber(ARGV[7])
local function num(k) return tonumber(redis.call('GET', k) or '0') end
local function over(limit, current, add)
  local l = tonumber(limit)
  return l >= 0 and current + add > l
end
local d, m, t = num(dk), num(mk), num(tk)
if over(ARGV[8], d, cost) then return {'day', d} end
if over(ARGV[9], m, cost) then return {'month', m} end
if over(ARGV[10], t, cost) then return {'total', t} end
redis.call('ZREMRANGEBYSCORE', ok, '-inf', now - 86400000)
local c = redis.call('ZCOUNT', ok, now, '+inf')
if over(ARGV[11], c, 1) then return {'concurrency', c} end
local r = num(rk)
if over(ARGV[12], r, 1) then return {'rpm', r} end
local u = num(uk)
if over(ARGV[13], u, tokens) then return {'tpm', u} end
redis.call('INCRBY', dk, ARGV[7]); redis.call('EXPIRE', dk, 172800)
redis.call('INCRBY', mk, ARGV[7]); redis.call('EXPIRE', mk, 5443200)
redis.call('INCRBY', tk, ARGV[7])
redis.call('INCR', rk); redis.call('EXPIRE', rk, 120)
redis.call('INCRBY', uk, ARGV[6]); redis.call('EXPIRE', uk, 120)
redis.call('ZADD', ok, ARGV[15], ARGV[14])
return {'ok', d + cost, m + cost, t + cost}
"#;

/// ARGV: key prefix, reservation id, reserved minute, day, month, token delta, cost delta, current
/// minute, day, month. Applies the deltas only if the reservation is still open, so sending it
/// twice (a retry after a broken connection) counts once, and a release for an admission Redis
/// never ran changes nothing. A window that has expired takes only increases, in the current one.
/// Returns 1 if applied, 0 if the reservation was not open.
pub const SETTLE: &str = r#"
local p = ARGV[1]
if redis.call('ZREM', p .. 'open', ARGV[2]) == 0 then return 0 end
local function adjust(kind, reserved, current, delta, ttl)
  if tonumber(delta) == 0 then return end
  local key = p .. kind .. reserved
  if redis.call('EXISTS', key) == 0 then
    if tonumber(delta) < 0 then return end
    key = p .. kind .. current
  end
  if redis.call('INCRBY', key, delta) < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
  if ttl > 0 and redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ttl) end
end
adjust('tpm:', ARGV[3], ARGV[8], ARGV[6], 120)
adjust('day:', ARGV[4], ARGV[9], ARGV[7], 172800)
adjust('month:', ARGV[5], ARGV[10], ARGV[7], 5443200)
if tonumber(ARGV[7]) ~= 0 then
  if redis.call('INCRBY', p .. 'total', ARGV[7]) < 0 then redis.call('SET', p .. 'total', 0) end
end
return 1
"#;

/// ARGV: key prefix, charge id, minute, day, month, tokens, cost. Adds usage settled locally while
/// Redis was unreachable, once per charge id (a retry counts once). Returns 1 if applied.
pub const CHARGE: &str = r#"
local p = ARGV[1]
if not redis.call('SET', p .. 'charged:' .. ARGV[2], '1', 'NX', 'EX', 86400) then return 0 end
redis.call('INCRBY', p .. 'tpm:' .. ARGV[3], ARGV[6]); redis.call('EXPIRE', p .. 'tpm:' .. ARGV[3], 120)
redis.call('INCRBY', p .. 'day:' .. ARGV[4], ARGV[7]); redis.call('EXPIRE', p .. 'day:' .. ARGV[4], 172800)
redis.call('INCRBY', p .. 'month:' .. ARGV[5], ARGV[7]); redis.call('EXPIRE', p .. 'month:' .. ARGV[5], 5443200)
redis.call('INCRBY', p .. 'total', ARGV[7])
return 1
"#;
