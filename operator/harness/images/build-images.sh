#!/usr/bin/env bash
# Builds the images the harness's node runs, without Docker and without a registry, into a cache
# outside the clone keyed by the content of their inputs, and prints one line per image:
#   <name> <image reference> <docker-archive tarball> <user of the image>
# Images (each a `docker save`-style archive that `ctr -n k8s.io images import` reads):
# - pause:    the pod sandbox, a static binary from pause.c (containerd's CRI needs one locally);
# - base:     Debian bookworm (debootstrap --variant=minbase from Debian's archive) plus the Node 24
#             binary of the npm package `node` (node_modules) and the npm that release bundles;
# - operator: the repository's Dockerfile built by buildah on that base (`--build-arg BASE=…`);
# - dovecot:  Debian bookworm with Debian's Dovecot packages, run as the dovecot user.
# Safe to run twice at once: each image is built under its own lock and appears by an atomic rename.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
CACHE_ROOT="${DEVICEPASS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/devicepass}"
IMAGES="$CACHE_ROOT/images"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NPM_VERSION=11.19.0 # the npm that Node 24.21.0 (the `node` devDependency) bundles
DOVECOT_PACKAGES=dovecot-core,dovecot-imapd,dovecot-pop3d,dovecot-auth-lua,dovecot-lmtpd
NODE_BINARY="$repo/node_modules/node/bin/node"

log() { echo "build-images: $*" >&2; }
hash_of() { sha256sum | cut -c1-16; }
need() { command -v "$1" >/dev/null || { log "$1 not found: apt-get install $2"; exit 1; }; }

# A recipe's key covers its own functions (as bash prints them) and the archive writer, so that
# changing one recipe rebuilds that image only.
recipe_of() { { declare -f "$@"; cat "$here/docker-archive.py"; } | hash_of; }

# Runs `build_<name> <work dir>` unless $IMAGES/<name>-<key> is complete; the build leaves
# image.tar and user in its work dir, which then becomes that folder.
cached() {
  local name="$1" key="$2" target="$IMAGES/$1-$2"
  if [[ ! -f "$target/.complete" ]]; then
    mkdir -p "$IMAGES"
    exec {lock}>"$IMAGES/.$name-$key.lock"
    flock "$lock"
    if [[ ! -f "$target/.complete" ]]; then
      local work started=$SECONDS status
      work="$(mktemp -d "$IMAGES/.build-$name-$key.XXXXXX")"
      building="$work"
      trap 'cleanup_work "$building"' EXIT
      log "building $name ($key)"
      # A subshell outside any condition, so that errexit holds inside the recipe.
      set +e
      (set -e; "build_$name" "$work" "$key") >"$work/build.log" 2>&1
      status=$?
      set -e
      if [[ $status -ne 0 ]]; then
        log "building $name failed; the end of its log:"
        tail -n 40 "$work/build.log" >&2
        exit 1
      fi
      cleanup_work "$work/tmp"
      echo "$key" >"$work/.complete"
      rm -rf "$target" # a leftover without .complete
      mv "$work" "$target"
      trap - EXIT
      log "built $name in $((SECONDS - started)) s"
    fi
    exec {lock}>&-
  fi
}

# A build folder may hold a chroot's or buildah's mounts: unmount them before removing it.
cleanup_work() {
  local work="$1"
  [[ -e "$work" ]] || return 0
  { grep -F " $work/" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r | while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done
  rm -rf --one-file-system "$work"
}

# A Debian root filesystem with the given extra packages. Its debs are cached across builds, in a
# folder per image: two debootstraps writing one cache at once corrupt each other's downloads.
debian_rootfs() {
  local dir="$1" include="$2" debs="$IMAGES/debs-$3"
  mkdir -p "$debs"
  need debootstrap debootstrap
  debootstrap --variant=minbase ${include:+--include="$include"} --cache-dir="$debs" \
    "$DEBIAN_SUITE" "$dir" "$DEBIAN_MIRROR"
  [[ -x "$dir/bin/sh" ]] || { echo "debootstrap left no /bin/sh in $dir" >&2; return 1; }
  # What `docker build` images leave out too: package lists and caches.
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/var/cache/debconf/*-old "$dir"/var/log/*.log
}

# A layer of a root filesystem, without the device nodes debootstrap made (the runtime mounts /dev).
layer_tar() { tar --numeric-owner --sort=name --mtime=@0 --exclude='./dev/*' -C "$1" -cf "$2" .; }

build_pause() {
  local work="$1" key="$2"
  need gcc gcc
  mkdir -p "$work/rootfs"
  gcc -static -Os -s -o "$work/rootfs/pause" "$here/pause.c"
  layer_tar "$work/rootfs" "$work/layer.tar"
  python3 "$here/docker-archive.py" "$work/image.tar" "localhost/devicepass-pause:$key" \
    '{"Entrypoint":["/pause"],"User":"65535:65535"}' "$work/layer.tar"
  rm -rf "$work/rootfs" "$work/layer.tar"
  echo "localhost/devicepass-pause:$key" >"$work/ref"
  echo "65535:65535" >"$work/user"
}

build_base() {
  local work="$1" key="$2" rootfs="$1/rootfs"
  debian_rootfs "$rootfs" "" base
  install -m 0755 "$NODE_BINARY" "$rootfs/usr/local/bin/node"
  mkdir -p "$work/tmp" "$rootfs/usr/local/lib/node_modules/npm"
  (cd "$work/tmp" && npm pack "npm@$NPM_VERSION" --silent >/dev/null)
  tar -xzf "$work/tmp/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  chroot "$rootfs" /usr/local/bin/node --version
  layer_tar "$rootfs" "$work/layer.tar"
  python3 "$here/docker-archive.py" "$work/image.tar" "localhost/devicepass-node-base:$key" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["node"]}' \
    "$work/layer.tar"
  rm -rf "$rootfs" "$work/layer.tar"
  echo "localhost/devicepass-node-base:$key" >"$work/ref"
  echo "0:0" >"$work/user"
}

build_operator() {
  local work="$1" key="$2" version
  need buildah buildah
  version="$("$NODE_BINARY" -p 'require(process.argv[1]).version' "$repo/package.json")"
  local buildah=(buildah --root "$work/tmp/storage" --runroot "$work/tmp/run" --storage-driver overlay)
  mkdir -p "$work/tmp/home"
  export TMPDIR="$work/tmp"
  # npm inside the build trusts what the host trusts (a proxy's CA, if any) through a mounted home
  # folder: a build-time mount, so nothing of it reaches the image.
  local ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
  if [[ -f "$ca" ]]; then
    cp "$ca" "$work/tmp/home/ca.crt"
    echo "cafile=/root/ca.crt" >"$work/tmp/home/.npmrc"
  fi
  "${buildah[@]}" pull "docker-archive:$(base_archive)"
  "${buildah[@]}" bud --isolation chroot --network host --layers=false \
    --build-arg "BASE=$(base_ref)" -v "$work/tmp/home:/root" \
    -f "$repo/Dockerfile" -t "localhost/devicepass:$version" "$repo"
  "${buildah[@]}" push "localhost/devicepass:$version" "docker-archive:$work/image.tar:devicepass:$version"
  "${buildah[@]}" rmi --all --force >/dev/null || true
  echo "docker.io/library/devicepass:$version" >"$work/ref"
  echo "65532:65532" >"$work/user"
}

build_dovecot() {
  local work="$1" key="$2" rootfs="$1/rootfs" uid gid
  debian_rootfs "$rootfs" "$DOVECOT_PACKAGES" dovecot
  # The package made a self-signed key at install time: an image must not carry a private key.
  rm -f "$rootfs"/etc/dovecot/private/*
  chroot "$rootfs" dovecot --version
  uid="$(chroot "$rootfs" id -u dovecot)" gid="$(chroot "$rootfs" id -g dovecot)"
  layer_tar "$rootfs" "$work/layer.tar"
  python3 "$here/docker-archive.py" "$work/image.tar" "localhost/devicepass-dovecot:$key" \
    "{\"Entrypoint\":[\"/usr/sbin/dovecot\",\"-F\"],\"User\":\"$uid:$gid\"}" "$work/layer.tar"
  rm -rf "$rootfs" "$work/layer.tar"
  echo "localhost/devicepass-dovecot:$key" >"$work/ref"
  echo "$uid:$gid" >"$work/user"
}

need python3 python3
[[ -x "$NODE_BINARY" ]] || { log "$NODE_BINARY missing: run npm ci"; exit 1; }

pause_key="$({ recipe_of build_pause layer_tar; cat "$here/pause.c"; } | hash_of)"
base_key="$(
  {
    recipe_of build_base debian_rootfs layer_tar
    echo "$DEBIAN_SUITE $DEBIAN_MIRROR $NPM_VERSION"
    sha256sum <"$NODE_BINARY"
  } | hash_of
)"
base_archive() { echo "$IMAGES/base-$base_key/image.tar"; }
base_ref() { cat "$IMAGES/base-$base_key/ref"; }
# The operator's build context by content: what the Dockerfile copies, less what .dockerignore leaves out.
operator_key="$(
  cd "$repo"
  {
    echo "$base_key"
    recipe_of build_operator
    find Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json \
      operator/src -type f ! -name '*.test.ts' -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum
  } | hash_of
)"
dovecot_key="$({ recipe_of build_dovecot debian_rootfs layer_tar; echo "$DEBIAN_SUITE $DEBIAN_MIRROR $DOVECOT_PACKAGES"; } | hash_of)"

wanted=("${@:-pause operator dovecot}")
read -r -a wanted <<<"${wanted[*]}"
started=$SECONDS
# Dovecot's root filesystem downloads while the operator's image builds.
dovecot_job=""
if [[ " ${wanted[*]} " == *" dovecot "* ]]; then
  cached dovecot "$dovecot_key" &
  dovecot_job=$!
fi
for name in "${wanted[@]}"; do
  case "$name" in
    pause) cached pause "$pause_key" ;;
    base) cached base "$base_key" ;;
    operator)
      # Two commands, not `a && b`: errexit must hold inside the recipes.
      cached base "$base_key"
      cached operator "$operator_key"
      ;;
    dovecot) ;;
    *) log "unknown image $name (pause, base, operator, dovecot)"; exit 2 ;;
  esac
done
[[ -z "$dovecot_job" ]] || wait "$dovecot_job"
log "images ready in $((SECONDS - started)) s"

for name in "${wanted[@]}"; do
  key_var="${name}_key"
  dir="$IMAGES/$name-${!key_var}"
  echo "$name $(cat "$dir/ref") $dir/image.tar $(cat "$dir/user")"
done
