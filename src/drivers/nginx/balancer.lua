-- teal's nginx balancer: per pool (a service's route, or its preview) the
-- peers and weight of each color live in a shared dict that teal sets over
-- a unix socket, so a switch or a weight change needs no reload. Responses
-- are counted per pool, color and status class for analysis.
--
-- Text format of a pool set (the PUT body and the peers file alike):
--   pool web
--   blue 100 10.0.0.2:8080 10.0.0.3:8080
--   green 0
-- and, for traffic for people, optional lines:
--   sticky teal_web                  each client keeps a color by this cookie
--   testers header X-Canary 1 green  these requests go to green
--   maint 600 Back at 14:00          a 503 page with Retry-After: 600
--   pause 1765040000000              new requests wait until then (ms since
--                                    the epoch): a release command runs
local M = {}
local dict = ngx.shared.teal_balancer

-- A rule line of a pool (sticky, testers, maint): true when it was one.
local function parse_rule(pool, line)
  local word = line:match("^(%a+) ")
  if word == "sticky" then
    pool.sticky = line:match("^sticky ([%w_-]+)$")
    return true, not pool.sticky and "bad line: " .. line or nil
  elseif word == "testers" then
    local kind, name, value, c = line:match("^testers (%a+) ([%w_-]+) (%S+) (%a+)$")
    if (kind ~= "header" and kind ~= "cookie") or (c ~= "blue" and c ~= "green") then
      return true, "bad line: " .. line
    end
    -- nginx names a request header's variable in lower case with '_'.
    local var = kind == "header" and "http_" .. name:lower():gsub("%-", "_") or "cookie_" .. name
    pool.testers = { var = var, value = value, color = c }
    return true
  elseif word == "pause" then
    pool.pause = tonumber(line:match("^pause (%d+)$") or "")
    return true, not pool.pause and "bad line: " .. line or nil
  elseif word == "maint" then
    local secs, msg = line:match("^maint (%d+) (.+)$")
    if not secs then
      return true, "bad line: " .. line
    end
    pool.maint = {
      retry = secs,
      page = "<!doctype html><meta charset=utf-8><title>Down for maintenance</title><p>" .. msg .. "</p>",
    }
    return true
  end
  return false
end

local function parse_pool(text)
  local pool = { blue = { w = 0, peers = {} }, green = { w = 0, peers = {} } }
  for line in text:gmatch("[^\n]+") do
    local rule, rerr = parse_rule(pool, line)
    if rerr then
      return nil, rerr
    end
    if not rule then
      local color, w, rest = line:match("^(%a+) (%d+)(.*)$")
      if not color or not pool[color] then
        return nil, "bad line: " .. line
      end
      local weight = tonumber(w)
      if weight > 100 then
        return nil, "weight above 100: " .. line
      end
      local peers = {}
      for peer in rest:gmatch("%S+") do
        local host, port = peer:match("^%[?([^%]]+)%]?:(%d+)$")
        if not host then
          return nil, "bad peer: " .. peer
        end
        peers[#peers + 1] = { host, tonumber(port) }
      end
      pool[color] = { w = weight, peers = peers }
    end
  end
  return pool
end

local function split_pools(text)
  local pools, order, cur = {}, {}, nil
  for line in text:gmatch("[^\n]+") do
    local name = line:match("^pool (%S+)$")
    if name then
      cur = name
      pools[name] = ""
      order[#order + 1] = name
    elseif cur then
      pools[cur] = pools[cur] .. line .. "\n"
    else
      return nil, nil, "a line before the first pool: " .. line
    end
  end
  return pools, order
end

-- Replaces the whole set of pools; validated before anything is written.
function M.set(text)
  local pools, order, err = split_pools(text)
  if not pools then
    return nil, err
  end
  for _, name in ipairs(order) do
    local ok, perr = parse_pool(pools[name])
    if not ok then
      return nil, "pool " .. name .. ": " .. perr
    end
  end
  for _, name in ipairs(order) do
    local ok, serr = dict:safe_set("pool:" .. name, pools[name])
    if not ok then
      return nil, "shared dict: " .. serr
    end
  end
  local old = dict:get("names") or ""
  local keep = {}
  for _, name in ipairs(order) do
    keep[name] = true
  end
  for name in old:gmatch("%S+") do
    if not keep[name] then
      dict:delete("pool:" .. name)
    end
  end
  dict:set("names", table.concat(order, " "))
  dict:incr("gen", 1, 0)
  return true
end

-- Per worker: the parsed pools of the dict's generation `seen`. A set
-- bumps the generation, so one number is read per request, and the round
-- robin counters stay in the worker (no lock on the shared dict).
local seen, pools = -1, {}

local function get_pool(name)
  local gen = dict:get("gen") or 0
  if gen ~= seen then
    seen, pools = gen, {}
  end
  local p = pools[name]
  if p == nil then
    local text = dict:get("pool:" .. name)
    p = text and parse_pool(text) or false
    if p then
      p.rr = 0
      for _, color in ipairs({ "blue", "green" }) do
        local c = p[color]
        c.rr = 0
        c.keys = {}
        for _, class in ipairs({ "2xx", "3xx", "4xx", "5xx" }) do
          c.keys[class] = "n:" .. name .. ":" .. color .. ":" .. class
        end
      end
    end
    pools[name] = p
  end
  return p or nil
end

-- access phase: choose the color by weight and remember it for the
-- balancer and the log phase. No pool, or no weight: 503, never a guess.
local seeded = false

-- A client's bucket 0-99 from its cookie, or a new one to set.
local function bucket(cookie)
  local b = tonumber((ngx.var["cookie_" .. cookie] or ""):match("^%d%d?$") or "")
  if b then
    return b
  end
  if not seeded then
    math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
    seeded = true
  end
  b = math.random(0, 99)
  ngx.ctx.teal_cookie = cookie .. "=" .. b .. "; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax"
  return b
end

-- switch.pause: while the pool's deadline is ahead, the request waits;
-- teal lifting the pause (a new set) lets it go on at once. Never longer
-- than 60 s, whatever the deadline says.
local function hold(name, pool)
  local start = ngx.now()
  while pool and pool.pause and pool.pause > ngx.now() * 1000 and ngx.now() - start < 60 do
    ngx.sleep(0.02)
    ngx.update_time()
    pool = get_pool(name)
  end
  return pool
end

function M.pick(name)
  local pool = get_pool(name)
  if pool and not pool.maint and pool.pause then
    pool = hold(name, pool)
  end
  if not pool then
    return ngx.exit(503)
  end
  local m = pool.maint
  if m then
    ngx.status = 503
    ngx.header["Content-Type"] = "text/html; charset=utf-8"
    ngx.header["Retry-After"] = m.retry
    ngx.header["Cache-Control"] = "no-store"
    ngx.print(m.page)
    return ngx.exit(ngx.HTTP_OK)
  end
  local bw = #pool.blue.peers > 0 and pool.blue.w or 0
  local gw = #pool.green.peers > 0 and pool.green.w or 0
  local total = bw + gw
  local c
  local t = pool.testers
  if t and ngx.var[t.var] == t.value and #pool[t.color].peers > 0 then
    c = pool[t.color]
  elseif total == 0 then
    return ngx.exit(503)
  elseif pool.sticky then
    -- Buckets below the green share go to green: a growing share moves
    -- only the buckets it adds.
    c = bucket(pool.sticky) * total < gw * 100 and pool.green or pool.blue
  else
    -- 37 is prime to 100: consecutive requests spread over the 100 slots.
    pool.rr = pool.rr + 1
    c = ((pool.rr * 37) % 100) * total < bw * 100 and pool.blue or pool.green
  end
  c.rr = c.rr + 1
  local ctx = ngx.ctx
  ctx.teal = c
  ctx.teal_i = c.rr
end

-- balancer phase: the next peer of the chosen color; a retry (an
-- unreachable peer) moves on to another peer of the same color.
function M.balance()
  local balancer = require("ngx.balancer")
  local ctx = ngx.ctx
  local c = ctx.teal
  if not c then
    return ngx.exit(ngx.ERROR)
  end
  local peers = c.peers
  local tries = ctx.teal_tries or 0
  if tries == 0 and #peers > 1 then
    balancer.set_more_tries(#peers - 1)
  end
  ctx.teal_tries = tries + 1
  local p = peers[((ctx.teal_i + tries) % #peers) + 1]
  local ok, err = balancer.set_current_peer(p[1], p[2])
  if not ok then
    ngx.log(ngx.ERR, "teal balancer: ", err)
    return ngx.exit(ngx.ERROR)
  end
end

-- header filter phase: the sticky cookie of a client that had none.
function M.header()
  local ck = ngx.ctx.teal_cookie
  if not ck then
    return
  end
  local h = ngx.header["Set-Cookie"]
  if h == nil then
    ngx.header["Set-Cookie"] = ck
  elseif type(h) == "table" then
    h[#h + 1] = ck
    ngx.header["Set-Cookie"] = h
  else
    ngx.header["Set-Cookie"] = { h, ck }
  end
end

-- log phase: one count per response of a chosen color.
function M.log()
  local c = ngx.ctx.teal
  if not c then
    return
  end
  local s = ngx.status
  local class = (s >= 500 and "5xx") or (s >= 400 and "4xx") or (s >= 300 and "3xx") or "2xx"
  dict:incr(c.keys[class], 1, 0)
end

-- The control API on teal's unix socket.
function M.pools()
  local method = ngx.req.get_method()
  if method == "PUT" then
    ngx.req.read_body()
    if ngx.req.get_body_file() then
      ngx.status = 413
      return ngx.say("body larger than client_body_buffer_size")
    end
    -- No body: the empty set (every pool removed).
    local body = ngx.req.get_body_data() or ""
    local ok, err = M.set(body)
    if not ok then
      ngx.status = 400
      return ngx.say(err)
    end
    return ngx.say("ok")
  end
  local out = {}
  for name in (dict:get("names") or ""):gmatch("%S+") do
    out[#out + 1] = "pool " .. name .. "\n" .. (dict:get("pool:" .. name) or "")
  end
  ngx.print(table.concat(out))
end

function M.counters()
  local out = {}
  for _, key in ipairs(dict:get_keys(0)) do
    local pool, color, class = key:match("^n:(.+):(%a+):(%dxx)$")
    if pool then
      out[#out + 1] = pool .. " " .. color .. " " .. class .. " " .. tostring(dict:get(key) or 0) .. "\n"
    end
  end
  ngx.print(table.concat(out))
end

-- At (re)load, in the master: after a restart the dict is empty, so load
-- what teal last set (only checked peers are ever written there). After a
-- reload the dict carried over and is newer than or equal to the file.
function M.load_file(path)
  if dict:get("names") then
    return
  end
  local f = io.open(path, "r")
  if not f then
    return
  end
  local text = f:read("*a")
  f:close()
  local ok, err = M.set(text)
  if not ok then
    ngx.log(ngx.ERR, "teal balancer: ", path, ": ", err)
  end
end

return M
