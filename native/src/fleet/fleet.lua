-- resile fleet store: one atomic decision per call, on the Redis clock (TIME).
-- The same semantics as resile_core::fleet::MemoryStore. Times are microseconds; every wait
-- returned is relative to this script's TIME, so no client clock is ever compared.
--
-- KEYS[1] the host's GCRA theoretical arrival time
-- KEYS[2] the host's hold (hash: until, why)    why: 1 Retry-After, 2 used-up quota
-- KEYS[3] the host's shared breaker "open until"
-- KEYS[4] the host's learned limit (hash: interval, burst)
--
-- ARGV[1] = 'reserve', interval_us (0: holds only), burst, max_wait_us
--   -> {0, 0, 0} admitted · {1, wait, 0} booked wait from now · {2, wait, 0} refused
--      (nothing booked) · {3, wait, why} held (why 3: a shared breaker opening)
-- ARGV[1] = 'hold', wait_us, why        -> {0, 0, 0}; a hold only ever extends
-- ARGV[1] = 'breaker', wait_us          -> {0, 0, 0}; likewise
-- ARGV[1] = 'limit', interval_us, burst, ttl_us -> {0, 0, 0}; a slower limit in force is kept
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local op = ARGV[1]

local function ms(us)
  return math.floor(us / 1000) + 1000
end

if op == 'reserve' then
  local best, why = 0, 0
  local hold = redis.call('HMGET', KEYS[2], 'until', 'why')
  local h = tonumber(hold[1])
  if h and h > now then
    best, why = h, tonumber(hold[2])
  end
  local b = tonumber(redis.call('GET', KEYS[3]))
  if b and b > now and b > best then
    best, why = b, 3
  end
  if best > now then
    return {3, best - now, why}
  end
  local interval = tonumber(ARGV[2])
  local burst = tonumber(ARGV[3])
  if interval == 0 then
    return {0, 0, 0}
  end
  local lim = redis.call('HMGET', KEYS[4], 'interval', 'burst')
  local li = tonumber(lim[1])
  if li and li > interval then
    interval, burst = li, tonumber(lim[2])
  end
  local tat = tonumber(redis.call('GET', KEYS[1])) or 0
  local earliest = math.max(tat - interval * (burst - 1), now)
  local wait = earliest - now
  if wait > tonumber(ARGV[4]) then
    return {2, wait, 0}
  end
  local new = math.max(tat, now) + interval
  redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', ms(new - now))
  if wait == 0 then
    return {0, 0, 0}
  end
  return {1, wait, 0}
elseif op == 'hold' then
  local wait = tonumber(ARGV[2])
  local cur = tonumber(redis.call('HGET', KEYS[2], 'until'))
  if not cur or now + wait > cur then
    redis.call('HSET', KEYS[2], 'until', string.format('%.0f', now + wait), 'why', ARGV[3])
    redis.call('PEXPIRE', KEYS[2], ms(wait))
  end
elseif op == 'breaker' then
  local wait = tonumber(ARGV[2])
  local cur = tonumber(redis.call('GET', KEYS[3]))
  if not cur or now + wait > cur then
    redis.call('SET', KEYS[3], string.format('%.0f', now + wait), 'PX', ms(wait))
  end
elseif op == 'limit' then
  local interval = tonumber(ARGV[2])
  local cur = tonumber(redis.call('HGET', KEYS[4], 'interval'))
  if not cur or interval >= cur then
    redis.call('HSET', KEYS[4], 'interval', ARGV[2], 'burst', ARGV[3])
    redis.call('PEXPIRE', KEYS[4], math.floor(tonumber(ARGV[4]) / 1000) + 1)
  end
else
  return redis.error_reply('resile fleet: unknown operation ' .. tostring(op))
end
return {0, 0, 0}
