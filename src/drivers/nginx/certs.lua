-- teal's route certificates in nginx: each service's certificate and key
-- live in a shared dict that teal sets over the balancer's unix socket,
-- and `ssl_certificate_by_lua` serves the one whose host the client named
-- (SNI), so installing or renewing a certificate needs no reload. ACME
-- HTTP-01 answers live in the same dict; hosts whose certificate is
-- installed redirect plain HTTP to HTTPS (when their route asks).
--
-- Text of one certificate (the PUT body):
--   sha <hex sha256 of the leaf>
--   hosts shop.example.com www.shop.example.com
--   <chain PEM, leaf first><key PEM>
local M = {}
local dict = ngx.shared.teal_certs
local ACME = "/.well-known/acme-challenge/"

local function valid_name(s)
  return s ~= nil and #s > 0 and #s <= 253 and s:match("^[%w%-%._]+$") ~= nil
end

-- The parts of a certificate's text, or nil and why.
local function parse(text)
  local sha, hosts, pem = text:match("^sha (%x+)\nhosts ([^\n]*)\n(.*)$")
  if not sha then
    return nil, "expected 'sha <hex>', 'hosts <names>' then PEM"
  end
  local at = pem:find("-----BEGIN [%u ]*PRIVATE KEY-----")
  if not at then
    return nil, "no private key after the chain"
  end
  local list = {}
  for h in hosts:gmatch("%S+") do
    if not valid_name(h) then
      return nil, "bad host name: " .. h
    end
    list[#list + 1] = h:lower()
  end
  return { sha = sha, hosts = list, chain = pem:sub(1, at - 1), key = pem:sub(at) }
end

-- Checks what OpenSSL would refuse at the handshake, before anything is set.
local function loadable(c)
  local ssl = require("ngx.ssl")
  local cert, err = ssl.parse_pem_cert(c.chain)
  if not cert then
    return nil, "certificate: " .. (err or "unreadable")
  end
  local key, kerr = ssl.parse_pem_priv_key(c.key)
  if not key then
    return nil, "key: " .. (kerr or "unreadable")
  end
  return true
end

-- Sets `service`'s certificate, then points its hosts at it (a handshake
-- never finds a host whose certificate is not there yet) and forgets the
-- hosts it no longer has.
function M.put(service, text)
  local c, err = parse(text)
  if not c then
    return nil, err
  end
  local ok, lerr = loadable(c)
  if not ok then
    return nil, lerr
  end
  local value = c.sha .. "\n" .. c.chain .. c.key
  local set, serr = dict:safe_set("pem:" .. service, value)
  if not set then
    return nil, "shared dict: " .. serr
  end
  local keep = {}
  for _, h in ipairs(c.hosts) do
    keep[h] = true
    dict:set("host:" .. h, service)
  end
  for h in (dict:get("hosts:" .. service) or ""):gmatch("%S+") do
    if not keep[h] and dict:get("host:" .. h) == service then
      dict:delete("host:" .. h)
    end
  end
  dict:set("hosts:" .. service, table.concat(c.hosts, " "))
  return true
end

-- Unpoints the hosts first, then drops the certificate.
function M.remove(service)
  for h in (dict:get("hosts:" .. service) or ""):gmatch("%S+") do
    if dict:get("host:" .. h) == service then
      dict:delete("host:" .. h)
    end
  end
  dict:delete("hosts:" .. service)
  dict:delete("pem:" .. service)
end

-- One line per installed certificate: service, sha256 of its leaf, hosts.
function M.list()
  local out = {}
  for _, key in ipairs(dict:get_keys(0)) do
    local service = key:match("^pem:(.+)$")
    local v = service and dict:get(key)
    if v then
      out[#out + 1] = service .. " " .. v:match("^(%x+)") .. " " .. (dict:get("hosts:" .. service) or "") .. "\n"
    end
  end
  table.sort(out)
  return table.concat(out)
end

-- Per worker: the parsed certificate of each service and the dict value
-- it was parsed from, so a handshake parses only after a change.
local parsed = {}

-- ssl_certificate_by_lua: the certificate of the host the client named;
-- none (no SNI, an unknown name): nginx's fallback stays.
function M.cert()
  local ssl = require("ngx.ssl")
  local name = ssl.server_name()
  local service = name and dict:get("host:" .. name:lower())
  local value = service and dict:get("pem:" .. service)
  if not value then
    return
  end
  local p = parsed[service]
  if not p or p.value ~= value then
    local pem = value:sub(#value:match("^%x+\n") + 1)
    local at = pem:find("-----BEGIN [%u ]*PRIVATE KEY-----")
    local cert = ssl.parse_pem_cert(pem:sub(1, at - 1))
    local key = ssl.parse_pem_priv_key(pem:sub(at))
    if not cert or not key then
      ngx.log(ngx.ERR, "teal certs: unreadable certificate of ", service)
      return
    end
    p = { value = value, cert = cert, key = key }
    parsed[service] = p
  end
  ssl.clear_certs()
  local ok, err = ssl.set_cert(p.cert)
  if ok then
    ok, err = ssl.set_priv_key(p.key)
  end
  if not ok then
    ngx.log(ngx.ERR, "teal certs: ", service, ": ", err)
    return ngx.exit(ngx.ERROR)
  end
end

-- rewrite phase of a TLS route's host: an ACME answer (whatever the
-- redirect), then the 308 to HTTPS once the host's certificate is there.
function M.plain(host, redirect)
  local uri = ngx.var.uri
  if uri:sub(1, #ACME) == ACME then
    local answer = dict:get("acme:" .. uri:sub(#ACME + 1))
    if answer then
      ngx.header["Content-Type"] = "text/plain"
      ngx.print(answer)
      return ngx.exit(200)
    end
  end
  if redirect and ngx.var.https ~= "on" and dict:get("host:" .. host) then
    local authority = ngx.var.http_host or host
    ngx.header["Location"] = "https://" .. authority .. ngx.var.request_uri
    return ngx.exit(308)
  end
end

-- header filter of a TLS route's host: HSTS on HTTPS answers only.
function M.hsts(age)
  if ngx.var.https == "on" then
    ngx.header["Strict-Transport-Security"] = "max-age=" .. age
  end
end

local function body()
  ngx.req.read_body()
  if ngx.req.get_body_file() then
    return nil, "body larger than client_body_buffer_size"
  end
  return ngx.req.get_body_data() or ""
end

local function answer(status, text)
  ngx.status = status
  return ngx.say(text)
end

-- The control API on teal's unix socket:
--   GET /certs, PUT|DELETE /certs/<service>, PUT|DELETE /acme/<token>.
function M.control()
  local method = ngx.req.get_method()
  local kind, name = ngx.var.uri:match("^/(%a+)/?(.*)$")
  if kind == "certs" and name == "" and method == "GET" then
    return ngx.print(M.list())
  end
  if not valid_name(name) or (kind ~= "certs" and kind ~= "acme") then
    return answer(404, "no such control path")
  end
  if method == "DELETE" then
    if kind == "certs" then
      M.remove(name)
    else
      dict:delete("acme:" .. name)
    end
    return answer(200, "ok")
  end
  if method ~= "PUT" then
    return answer(405, "GET, PUT or DELETE")
  end
  local text, err = body()
  if not text then
    return answer(413, err)
  end
  local ok
  if kind == "certs" then
    ok, err = M.put(name, text)
  else
    ok, err = dict:safe_set("acme:" .. name, text)
  end
  if not ok then
    return answer(400, err)
  end
  return answer(200, "ok")
end

-- At (re)load, in the master: after a restart the dict is empty, so load
-- what teal last installed (the list file names each service's sha and
-- hosts; its PEM is `<dir>/<service>.pem`). After a reload the dict
-- carried over and is what teal set since.
function M.load_file(list, dir)
  if dict:get("loaded") then
    return
  end
  dict:set("loaded", true)
  local f = io.open(list, "r")
  if not f then
    return
  end
  for line in f:lines() do
    local service, sha, hosts = line:match("^(%S+) (%x+) ?(.*)$")
    local pf = service and io.open(dir .. "/" .. service .. ".pem", "r")
    if pf then
      local pem = pf:read("*a")
      pf:close()
      local ok, err = M.put(service, "sha " .. sha .. "\nhosts " .. hosts .. "\n" .. pem)
      if not ok then
        ngx.log(ngx.ERR, "teal certs: ", dir, "/", service, ".pem: ", err)
      end
    end
  end
  f:close()
end

return M
