#!/usr/bin/env bash
# Builds the images the harness's node runs, without Docker and without a registry, into a cache
# outside the clone keyed by the content of their inputs, and prints one line per image:
#   <name> <image reference> <docker-archive tarball> <user of the image>
# Images (each a `docker save`-style archive that `ctr -n k8s.io images import` reads):
# - pause:    the pod sandbox, a static binary from pause.c (containerd's CRI needs one locally);
# - debian:   Debian bookworm (debootstrap --variant=minbase from Debian's archive), what the
#             public debian:bookworm-slim is: one layer, the others' first;
# - base:     debian plus a layer with the Node 24 binary of the npm package `node` (node_modules)
#             and the npm that release bundles: what node:24-bookworm-slim is;
# - operator: the repository's Dockerfile built by buildah on that base (`--build-arg BASE=…`);
# - dovecot:  examples/dovecot/kubernetes/Dockerfile built by buildah on debian (`--from`), tagged
#             as examples/dovecot/kubernetes/dovecot.yaml names it.
# Safe to run twice at once: each image is built under its own lock and appears by an atomic rename.
# DEVICEPASS_IMAGE_CACHE_DIR moves the image cache alone (default $DEVICEPASS_CACHE_DIR/images).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
CACHE_ROOT="${DEVICEPASS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/devicepass}"
IMAGES="${DEVICEPASS_IMAGE_CACHE_DIR:-$CACHE_ROOT/images}"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NPM_VERSION=11.19.0 # the npm that Node 24.21.0 (the `node` devDependency) bundles
DOVECOT_CONTEXT="$repo/examples/dovecot/kubernetes"
# What examples/dovecot/kubernetes/dovecot.yaml runs: the tag its comment builds.
DOVECOT_TAG=dovecot-devicepass:2.3
# Images of other keys unused this long are removed (their folders are touched at every use).
PRUNE_DAYS=2
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
  touch "$target/.used"
}

# Removes the folders of older keys of the wanted images that nobody used for PRUNE_DAYS.
prune() {
  local name dir
  for name in "$@"; do
    for dir in "$IMAGES/$name"-*/; do
      dir="${dir%/}"
      [[ -f "$dir/.complete" ]] || continue
      [[ "$(basename "$dir")" == "$name-$(key_of "$name")" ]] && continue
      [[ -n "$(find "$dir" -maxdepth 1 \( -name .used -o -name .complete \) -mtime -"$PRUNE_DAYS")" ]] && continue
      log "removing $(basename "$dir"), unused for $PRUNE_DAYS days"
      rm -rf --one-file-system "$dir"
    done
  done
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
  # What Debian's docker images hold too: no service starts while packages install (a Dockerfile's
  # apt-get install would otherwise start Dovecot on the build host's network), and no package lists.
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 0755 "$dir/usr/sbin/policy-rc.d"
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

build_debian() {
  local work="$1" key="$2" rootfs="$1/rootfs"
  debian_rootfs "$rootfs" "" debian
  chroot "$rootfs" apt-get --version >/dev/null
  layer_tar "$rootfs" "$work/layer.tar"
  python3 "$here/docker-archive.py" "$work/image.tar" "localhost/devicepass-debian:$key" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["bash"]}' \
    "$work/layer.tar"
  rm -rf "$rootfs" "$work/layer.tar"
  echo "localhost/devicepass-debian:$key" >"$work/ref"
  echo "0:0" >"$work/user"
}

# The single layer of the debian image, written to $1.
debian_layer() { tar -xOf "$(archive_of debian)" --wildcards '*/layer.tar' >"$1"; }

build_base() {
  local work="$1" key="$2" files="$1/tmp/node"
  mkdir -p "$files/usr/local/bin" "$files/usr/local/lib/node_modules/npm" "$work/tmp/npm"
  install -m 0755 "$NODE_BINARY" "$files/usr/local/bin/node"
  (cd "$work/tmp/npm" && npm pack "npm@$NPM_VERSION" --silent >/dev/null)
  tar -xzf "$work/tmp/npm/npm-$NPM_VERSION.tgz" -C "$files/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$files/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$files/usr/local/bin/npx"
  chmod -R u=rwX,go=rX "$files"
  debian_layer "$work/tmp/debian.tar"
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$files" -cf "$work/tmp/node.tar" ./usr
  python3 "$here/docker-archive.py" "$work/image.tar" "localhost/devicepass-node-base:$key" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["node"]}' \
    "$work/tmp/debian.tar" "$work/tmp/node.tar"
  echo "localhost/devicepass-node-base:$key" >"$work/ref"
  echo "0:0" >"$work/user"
}

# buildah with its storage in the build's own folder; TMPDIR too (buildah's scratch space).
buildah_in() {
  local work="$1"
  shift
  TMPDIR="$work/tmp" buildah --root "$work/tmp/storage" --runroot "$work/tmp/run" --storage-driver overlay "$@"
}

build_operator() {
  local work="$1" key="$2" version
  need buildah buildah
  version="$("$NODE_BINARY" -p 'require(process.argv[1]).version' "$repo/package.json")"
  mkdir -p "$work/tmp/home"
  # npm inside the build trusts what the host trusts (a proxy's CA, if any) through a mounted home
  # folder: a build-time mount, so nothing of it reaches the image.
  local ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
  if [[ -f "$ca" ]]; then
    cp "$ca" "$work/tmp/home/ca.crt"
    echo "cafile=/root/ca.crt" >"$work/tmp/home/.npmrc"
  fi
  buildah_in "$work" pull "docker-archive:$(archive_of base)"
  buildah_in "$work" bud --isolation chroot --network host --layers=false --pull=never \
    --build-arg "BASE=$(ref_of base)" -v "$work/tmp/home:/root" \
    -f "$repo/Dockerfile" -t "localhost/devicepass:$version" "$repo"
  buildah_in "$work" push "localhost/devicepass:$version" "docker-archive:$work/image.tar:devicepass:$version"
  buildah_in "$work" rmi --all --force >/dev/null || true
  echo "docker.io/library/devicepass:$version" >"$work/ref"
  echo "65532:65532" >"$work/user"
}

build_dovecot() {
  local work="$1" key="$2" container uid gid
  need buildah buildah
  mkdir -p "$work/tmp"
  buildah_in "$work" pull "docker-archive:$(archive_of debian)"
  buildah_in "$work" bud --isolation chroot --network host --layers=false --pull=never \
    --from "$(ref_of debian)" -f "$DOVECOT_CONTEXT/Dockerfile" -t "localhost/$DOVECOT_TAG" "$DOVECOT_CONTEXT"
  container="$(buildah_in "$work" from --pull-never "localhost/$DOVECOT_TAG")"
  uid="$(buildah_in "$work" run --isolation chroot "$container" -- id -u dovecot)"
  gid="$(buildah_in "$work" run --isolation chroot "$container" -- id -g dovecot)"
  # An image must carry no private key (Debian's dovecot-core makes a self-signed one at install time).
  local keys
  keys="$(buildah_in "$work" run --isolation chroot "$container" -- sh -c 'ls /etc/dovecot/private/* /etc/ssl/private/* 2>/dev/null || true')"
  if [[ -n "$keys" ]]; then
    echo "the image holds private keys ($keys): $DOVECOT_CONTEXT/Dockerfile must remove them" >&2
    return 1
  fi
  buildah_in "$work" rm "$container" >/dev/null
  buildah_in "$work" push "localhost/$DOVECOT_TAG" "docker-archive:$work/image.tar:$DOVECOT_TAG"
  buildah_in "$work" rmi --all --force >/dev/null || true
  echo "docker.io/library/$DOVECOT_TAG" >"$work/ref"
  echo "$uid:$gid" >"$work/user"
}

need python3 python3
[[ -x "$NODE_BINARY" ]] || { log "$NODE_BINARY missing: run npm ci"; exit 1; }

pause_key="$({ recipe_of build_pause layer_tar; cat "$here/pause.c"; } | hash_of)"
debian_key="$({ recipe_of build_debian debian_rootfs layer_tar; echo "$DEBIAN_SUITE $DEBIAN_MIRROR"; } | hash_of)"
base_key="$(
  {
    echo "$debian_key $NPM_VERSION"
    recipe_of build_base debian_layer
    sha256sum <"$NODE_BINARY"
  } | hash_of
)"
# The operator's build context by content: what the Dockerfile copies, less what .dockerignore leaves out.
operator_key="$(
  cd "$repo"
  {
    echo "$base_key"
    recipe_of build_operator buildah_in
    find Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json \
      operator/src -type f ! -name '*.test.ts' -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum
  } | hash_of
)"
dovecot_key="$({ echo "$debian_key $DOVECOT_TAG"; recipe_of build_dovecot buildah_in; cat "$DOVECOT_CONTEXT/Dockerfile"; } | hash_of)"

key_of() { local var="$1_key"; echo "${!var}"; }
archive_of() { echo "$IMAGES/$1-$(key_of "$1")/image.tar"; }
ref_of() { cat "$IMAGES/$1-$(key_of "$1")/ref"; }

wanted=("${@:-pause operator dovecot}")
read -r -a wanted <<<"${wanted[*]}"
for name in "${wanted[@]}"; do
  case "$name" in pause | debian | base | operator | dovecot) ;; *)
    log "unknown image $name (pause, debian, base, operator, dovecot)"
    exit 2
    ;;
  esac
done
started=$SECONDS
cached pause "$pause_key"
cached debian "$debian_key"
# Dovecot's packages download while the operator's image builds.
dovecot_job=""
if [[ " ${wanted[*]} " == *" dovecot "* ]]; then
  cached dovecot "$dovecot_key" &
  dovecot_job=$!
fi
if [[ " ${wanted[*]} " == *" operator "* || " ${wanted[*]} " == *" base "* ]]; then
  cached base "$base_key"
fi
if [[ " ${wanted[*]} " == *" operator "* ]]; then
  cached operator "$operator_key"
fi
[[ -z "$dovecot_job" ]] || wait "$dovecot_job"
log "images ready in $((SECONDS - started)) s"
prune pause debian base operator dovecot

for name in "${wanted[@]}"; do
  dir="$IMAGES/$name-$(key_of "$name")"
  echo "$name $(cat "$dir/ref") $dir/image.tar $(cat "$dir/user")"
done
