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

  local devices, tried = 0, 0
  for line in content:gmatch("[^\n]+") do
    if line:sub(1, 1) ~= "#" then
      local f = split_tabs(line)
      -- address, device, protocols, hash; the address must be the login's own (lower-cased).
      if #f == 4 and f[1]:lower() == user and f[2] ~= "" and f[4] ~= "" then
        devices = devices + 1
        if protocol ~= nil and allows(f[3], protocol) then
          tried = tried + 1
          -- Returns 1 on a match; 0 or -1 (with a message that never holds the password) otherwise.
          if req:password_verify(f[4], password) == 1 then
            req:log_debug("devicepass: device " .. f[2] .. " matched")
            return dovecot.auth.PASSDB_RESULT_OK, { userdb_device = f[2] }
          end
        end
      end
    end
  end

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
