//! The Lua script Redis runs for shared enforcement: one call admits, settles and charges a whole
//! batch, each operation checked and applied in order while the script runs atomically, so a check
//! and its reservation cannot interleave with another instance's.
//!
//! Keys, under `PREFIX:k:NAME:`: `counters`, a hash of the key's windows and what they hold
//! (`minute`, `rpm`, `tpm`, `day`, `spent_day`, `month`, `spent_month`, `spent_total`; spend in
//! micro-dollars, reservations in flight included), `open`, a sorted set of the reservations in
//! flight scored by when their concurrency lease ends, and `charged:ID` for usage handed over after
//! an outage.
//!
//! Why one hash and one script per batch: Redis spends about a microsecond on each `redis.call`
//! and on each script call, and that, not the round trip, capped a busy gateway (a reservation
//! touched eleven keys in sixteen calls, its settlement up to ten more). Now a batch reads and writes
//! each key's hash once, adds and removes its reservations with one `ZADD` and one `ZREM`, and costs
//! one `ZSCORE` per settlement: the rest is Lua arithmetic.
//!
//! Windows only move forward: an instance whose clock lags counts into the newest window (stricter,
//! never a reset). A window that has ended takes only increases, into the current one.

/// ARGV: operations one after another, each a letter and a fixed number of arguments:
/// - `A` admit (15): key prefix, now ms, minute, day, month, estimated tokens, estimated cost,
///   limits (day, month, total, concurrent, rpm, tpm; -1 for none), reservation id, lease end ms.
///   Answers `{"ok", spent_day, spent_month, spent_total}` (after reserving) or `{RULE, current}`.
/// - `S` settle (11): key prefix, reservation id, reserved minute, day, month, token delta, cost
///   delta, current minute, day, month, now ms. Applies only if the reservation is still open, so a
///   repeat (a retry after a broken connection) counts once and a release of an admission Redis never
///   ran changes nothing. Answers 1 if applied, else 0.
/// - `C` charge (7): key prefix, charge id, minute, day, month, tokens, cost: usage settled locally
///   while Redis was unreachable, applied once per charge id. Answers 1 if applied, else 0.
///
/// Returns one answer per operation. Every write but a charge's mark comes after every check, at the
/// end; Redis refuses a script's writes (out of memory) only at its first write, so a batch is applied
/// whole or not at all. Keep a batch to a few hundred operations (`unpack` has a limit).
pub const BATCH: &str = r#"
local F = {'minute', 'rpm', 'tpm', 'day', 'spent_day', 'month', 'spent_month', 'spent_total'}
local MINUTE, RPM, TPM, DAY, SPENT_DAY, MONTH, SPENT_MONTH, TOTAL = 1, 2, 3, 4, 5, 6, 7, 8
-- Per key touched: its counters (read once), reservations to open (lease, id pairs) and to close,
-- ids closed in this batch, and for the concurrency count the open leases found by the first check
-- (base) plus those opened less those closed since (delta), as `open` is written only at the end.
local keys, order = {}, {}
local function key(p)
  local k = keys[p]
  if k then return k end
  local v = redis.call('HMGET', p .. 'counters', unpack(F))
  local s = {}
  for i = 1, 8 do s[i] = tonumber(v[i] or '0') end
  k = {s = s, opening = {}, closing = {}, closed = {}, base = nil, delta = 0, dirty = false}
  keys[p] = k
  order[#order + 1] = p
  return k
end
-- Moves window `w` forward to `window`, emptying what it holds; never back.
local function roll(s, w, window)
  if window > s[w] then
    s[w] = window
    if w == MINUTE then s[RPM] = 0; s[TPM] = 0 else s[w + 1] = 0 end
  end
end
-- A settlement's correction: into the window reserved in if it is still the stored one, else only
-- an increase, into the current window.
local function add(s, w, v, reserved, now, delta)
  if delta == 0 then return end
  if reserved == s[w] then
    s[v] = math.max(0, s[v] + delta)
  elseif delta > 0 then
    roll(s, w, now)
    s[v] = s[v] + delta
  end
end
local function over(limit, current, add)
  return limit >= 0 and current + add > limit
end
local function admit(a)
  local k = key(ARGV[a])
  local s = k.s
  local now = tonumber(ARGV[a + 1])
  local tokens, cost = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  roll(s, MINUTE, tonumber(ARGV[a + 2])); roll(s, DAY, tonumber(ARGV[a + 3])); roll(s, MONTH, tonumber(ARGV[a + 4]))
  if over(tonumber(ARGV[a + 7]), s[SPENT_DAY], cost) then return {'day', s[SPENT_DAY]} end
  if over(tonumber(ARGV[a + 8]), s[SPENT_MONTH], cost) then return {'month', s[SPENT_MONTH]} end
  if over(tonumber(ARGV[a + 9]), s[TOTAL], cost) then return {'total', s[TOTAL]} end
  local concurrent = tonumber(ARGV[a + 10])
  if concurrent >= 0 then
    if not k.base then
      redis.call('ZREMRANGEBYSCORE', ARGV[a] .. 'open', '-inf', now - 86400000)
      k.base = redis.call('ZCOUNT', ARGV[a] .. 'open', now, '+inf')
    end
    if over(concurrent, k.base + k.delta, 1) then return {'concurrency', k.base + k.delta} end
  end
  if over(tonumber(ARGV[a + 11]), s[RPM], 1) then return {'rpm', s[RPM]} end
  if over(tonumber(ARGV[a + 12]), s[TPM], tokens) then return {'tpm', s[TPM]} end
  s[RPM] = s[RPM] + 1; s[TPM] = s[TPM] + tokens
  s[SPENT_DAY] = s[SPENT_DAY] + cost; s[SPENT_MONTH] = s[SPENT_MONTH] + cost; s[TOTAL] = s[TOTAL] + cost
  k.opening[#k.opening + 1] = ARGV[a + 14]; k.opening[#k.opening + 1] = ARGV[a + 13]
  k.delta = k.delta + 1
  k.dirty = true
  return {'ok', s[SPENT_DAY], s[SPENT_MONTH], s[TOTAL]}
end
local function settle(a)
  local k = key(ARGV[a])
  local id = ARGV[a + 1]
  if k.closed[id] then return 0 end
  local lease = redis.call('ZSCORE', ARGV[a] .. 'open', id)
  if not lease then return 0 end
  k.closed[id] = true
  k.closing[#k.closing + 1] = id
  if tonumber(lease) >= tonumber(ARGV[a + 10]) then k.delta = k.delta - 1 end
  local s = k.s
  local dtokens, dcost = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  add(s, MINUTE, TPM, tonumber(ARGV[a + 2]), tonumber(ARGV[a + 7]), dtokens)
  add(s, DAY, SPENT_DAY, tonumber(ARGV[a + 3]), tonumber(ARGV[a + 8]), dcost)
  add(s, MONTH, SPENT_MONTH, tonumber(ARGV[a + 4]), tonumber(ARGV[a + 9]), dcost)
  s[TOTAL] = math.max(0, s[TOTAL] + dcost)
  k.dirty = true
  return 1
end
local function charge(a)
  if not redis.call('SET', ARGV[a] .. 'charged:' .. ARGV[a + 1], '1', 'NX', 'EX', 86400) then return 0 end
  local s = key(ARGV[a]).s
  local tokens, cost = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  roll(s, MINUTE, tonumber(ARGV[a + 2])); s[TPM] = s[TPM] + tokens
  roll(s, DAY, tonumber(ARGV[a + 3])); s[SPENT_DAY] = s[SPENT_DAY] + cost
  roll(s, MONTH, tonumber(ARGV[a + 4])); s[SPENT_MONTH] = s[SPENT_MONTH] + cost
  s[TOTAL] = s[TOTAL] + cost
  keys[ARGV[a]].dirty = true
  return 1
end
local ops = {A = {admit, 15}, S = {settle, 11}, C = {charge, 7}}
local answers, a = {}, 1
while a <= #ARGV do
  local op = ops[ARGV[a]]
  answers[#answers + 1] = op[1](a + 1)
  a = a + 1 + op[2]
end
for _, p in ipairs(order) do
  local k = keys[p]
  if #k.closing > 0 then redis.call('ZREM', p .. 'open', unpack(k.closing)) end
  if k.dirty then
    local s, fields = k.s, {}
    for i = 1, 8 do fields[2 * i - 1] = F[i]; fields[2 * i] = string.format('%d', s[i]) end
    redis.call('HSET', p .. 'counters', unpack(fields))
  end
  if #k.opening > 0 then redis.call('ZADD', p .. 'open', unpack(k.opening)) end
end
return answers
"#;

/// Arguments each operation of [`BATCH`] takes after its letter.
pub const ADMIT_ARGS: usize = 15;
pub const SETTLE_ARGS: usize = 11;
pub const CHARGE_ARGS: usize = 7;
