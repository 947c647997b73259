-- devicepass passdb for Dovecot 2.3: checks a login against every device password of its address.
--
-- The operator's password database is mounted as one directory (a projected volume of its shard
-- Secrets): one file per address, named by addressKey() of operator/src/passdb/format.ts, with
-- lines `address<TAB>namespace/device<TAB>protocols<TAB>{ARGON2ID}hash`. A login reads only the
-- file of its own address, so its cost does not grow with the number of addresses. The file is
-- read afresh at every login: a rotated or revoked password stops working as soon as the volume
-- shows the new file, without a reload. See README.md beside this file.
--
-- Dovecot 2.3 passes no custom parameters to a Lua passdb, so the directory comes from the
-- environment (`import_environment` in devicepass-auth.conf).
--
-- Two things stay in each auth worker's memory between logins:
-- - the passwords it verified, by hash: a client that reconnects costs one table lookup instead of
--   one argon2id verification per device. Safe by construction: a verification is a pure function of
--   (hash, password), and the file is still read at every login, so a rotated or revoked device (its
--   hash gone from the file) is refused at once. Plaintext stays in the worker's memory, as it does
--   in Dovecot's own auth cache.
-- - when it last stamped each device: a successful login touches one small file per device in
--   DEVICEPASS_STAMP_DIR (if set), at most once per DEVICEPASS_STAMP_INTERVAL seconds per worker;
--   passdb-sync reads them for the devices' status.lastUsedAt.

local default_dir = "/run/devicepass/passdb"

-- Dovecot service name -> the protocol a MailDevice lists in spec.protocols. Services not listed
-- here (managesieve, doveadm, ...) are allowed for no device.
local protocol_of_service = {
  imap = "imap",
  pop3 = "pop3",
  smtp = "smtp", -- SASL from Postfix (smtpd_sasl_type = dovecot)
  submission = "smtp", -- Dovecot's own submission service
}

-- Kubernetes Secret keys are at most 253 characters; a longer key cannot be in the database.
local max_key_length = 253

local function passdb_dir()
  local dir = os.getenv("DEVICEPASS_PASSDB_DIR")
  if dir == nil or dir == "" then
    return default_dir
  end
  return dir
end

-- Verified passwords by hash (see the top of this file); emptied whenever it grows to
-- DEVICEPASS_VERIFIED_CACHE_SIZE entries (0: remember nothing, verify every login).
local max_verified = tonumber(os.getenv("DEVICEPASS_VERIFIED_CACHE_SIZE") or "") or 4096
local verified, verified_count = {}, 0

local function remember(hash, password)
  if max_verified <= 0 then
    return
  end
  if verified[hash] == nil then
    if verified_count >= max_verified then
      verified, verified_count = {}, 0
    end
    verified_count = verified_count + 1
  end
  verified[hash] = password
end

-- Last-login stamps: the folder is read once per worker; no folder, no stamps.
local stamp_dir = os.getenv("DEVICEPASS_STAMP_DIR")
if stamp_dir == "" then
  stamp_dir = nil
end
local stamp_interval = tonumber(os.getenv("DEVICEPASS_STAMP_INTERVAL") or "") or 60
local stamped_at = {}
local stamp_failed = false

-- `namespace/device` -> the stamp file `namespace_device` (neither part can hold `_` or `/`).
local function stamp(req, device)
  if stamp_dir == nil or not device:match("^[a-z0-9][-a-z0-9]*/[a-z0-9][-.a-z0-9]*$") then
    return
  end
  local now = os.time()
  local last = stamped_at[device]
  if last ~= nil and now - last < stamp_interval then
    return
  end
  stamped_at[device] = now
  -- A small write to a local folder: it never blocks a login for long, and a failure never fails one.
  local name = device:gsub("/", "_", 1)
  local file = io.open(stamp_dir .. "/" .. name, "w")
  if file == nil then
    if not stamp_failed then
      stamp_failed = true
      req:log_warning("devicepass: cannot write last-login stamps in " .. stamp_dir)
    end
    return
  end
  file:write(tostring(now))
  file:close()
end

-- addressKey(): lower-case (ASCII, as MailAddress only admits ASCII addresses), then every byte
-- outside [a-z0-9.-] written as `_` and two lower-case hex digits. Injective, and the result is
-- always a safe file name: no `/`, and a real key holds `_40` for the `@`.
local function address_key(address)
  local lower = address:gsub("[A-Z]", function(c)
    return string.char(c:byte() + 32)
  end)
  return (lower:gsub("[^a-z0-9.%-]", function(c)
    return string.format("_%02x", c:byte())
  end))
end

local function split_tabs(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

local function allows(protocols, protocol)
  for p in protocols:gmatch("[^,]+") do
    if p == protocol then
      return true
    end
  end
  return false
end

function auth_password_verify(req, password)
  local user = req.user
  local protocol = protocol_of_service[req.service]
  local key = address_key(user)
  -- Keys starting with "." would name the volume's own `..data` entries; no address has one.
  if not user:find("@", 1, true) or key:sub(1, 1) == "." or #key > max_key_length then
    return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "not a devicepass address"
  end

  local path = passdb_dir() .. "/" .. key
  local file, err, errno = io.open(path, "r")
  if file == nil then
    if errno == 2 then -- ENOENT: the address has no device (or was never declared)
      return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "no devices for this address"
    end
    req:log_error("devicepass: cannot read the password database: " .. tostring(err))
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "cannot read the password database"
  end
  -- Read the whole file before verifying: argon2id takes milliseconds per hash, and the volume
  -- may swap meanwhile; the open descriptor keeps this login on one consistent version.
  local content, read_err = file:read("*a")
  file:close()
  if content == nil then
    req:log_error("devicepass: cannot read the password database: " .. tostring(read_err))
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "cannot read the password database"
  end

  -- address, device, protocols, hash of each device allowed for this service; the address must
  -- be the login's own (lower-cased).
  local devices, candidates = 0, {}
  for line in content:gmatch("[^\n]+") do
    if line:sub(1, 1) ~= "#" then
      local f = split_tabs(line)
      if #f == 4 and f[1]:lower() == user and f[2] ~= "" and f[4] ~= "" then
        devices = devices + 1
        if protocol ~= nil and allows(f[3], protocol) then
          candidates[#candidates + 1] = f
        end
      end
    end
  end

  -- A password this worker verified against a hash still in the file: no argon2id needed.
  for _, f in ipairs(candidates) do
    if verified[f[4]] == password then
      stamp(req, f[2])
      return dovecot.auth.PASSDB_RESULT_OK, { userdb_device = f[2] }
    end
  end
  for _, f in ipairs(candidates) do
    -- Returns 1 on a match; 0 or -1 (with a message that never holds the password) otherwise.
    if req:password_verify(f[4], password) == 1 then
      req:log_debug("devicepass: device " .. f[2] .. " matched")
      remember(f[4], password)
      stamp(req, f[2])
      return dovecot.auth.PASSDB_RESULT_OK, { userdb_device = f[2] }
    end
  end
  local tried = #candidates

  if devices == 0 then
    return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "no devices for this address"
  end
  req:log_debug(
    string.format("devicepass: no match among %d of %d devices allowed for %s", tried, devices, req.service)
  )
  return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "password mismatch"
end

-- Lookups without a plaintext password (CRAM-MD5 and other credential lookups, `doveadm auth
-- lookup`) cannot be answered from one-way hashes of several passwords: report no such user, so
-- that a later passdb may answer instead.
function auth_passdb_lookup(req)
  return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "devicepass verifies plaintext passwords only"
end
