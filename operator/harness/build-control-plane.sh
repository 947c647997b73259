#!/usr/bin/env bash
# Builds the pinned control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kubectl, helm) from the Go module proxy into a versioned cache outside the clone, and
# prints the folder that holds them. Safe to run twice at once; a half-finished build is
# never mistaken for a finished one (the folder appears by an atomic rename only when complete).
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.35.0}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.6}" # the etcd envtest pairs with Kubernetes 1.35.0
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CACHE_ROOT="${DEVICEPASS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/devicepass}"
BUILD_ID="k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}-$(go env GOOS)-$(go env GOARCH)"
TARGET="$CACHE_ROOT/bin/$BUILD_ID"
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl helm)

log() { echo "build-control-plane: $*" >&2; }

is_complete() { [[ -f "$1/.complete" ]] && for b in "${BINARIES[@]}"; do [[ -x "$1/$b" ]] || return 1; done; }

if is_complete "$TARGET"; then echo "$TARGET"; exit 0; fi

mkdir -p "$CACHE_ROOT/bin"
exec 9>"$CACHE_ROOT/bin/.$BUILD_ID.lock"
log "waiting for the build lock" && flock 9
# Another run may have finished the build while we waited for the lock.
if is_complete "$TARGET"; then echo "$TARGET"; exit 0; fi

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
work="$(mktemp -d "$CACHE_ROOT/bin/.build-$BUILD_ID.XXXXXX")"
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out"
started=$SECONDS

# A module that requires $1@$2 and replaces each of its relative replaces ($4-prefixed
# module paths under $3) with the published module of version $5.
prepare_module() {
  local dir="$1" module="$2" version="$3" replace_version="$4"
  mkdir -p "$dir"
  (
    cd "$dir"
    go mod init "devicepass.local/build/$(basename "$dir")" >/dev/null 2>&1
    local gomod
    gomod="$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    go mod edit -require="$module@$version"
    go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]["Path"]
    if new.startswith("./staging/") or new.startswith("../"):
        print(r["Old"]["Path"])
' | while read -r replaced; do
      go mod edit -replace="$replaced=$replaced@$replace_version"
    done
  )
}

minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
staging_version="v0.${KUBERNETES_VERSION#v1.}"
log "preparing Kubernetes $KUBERNETES_VERSION (staging modules $staging_version)"
prepare_module "$work/kubernetes" k8s.io/kubernetes "$KUBERNETES_VERSION" "$staging_version"
version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
(
  cd "$work/kubernetes"
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    go get "k8s.io/kubernetes/cmd/$cmd@$KUBERNETES_VERSION" >/dev/null 2>&1 || go get "k8s.io/kubernetes/cmd/$cmd"
  done
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    log "building $cmd"
    go build -trimpath -ldflags "-s -w $version_flags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
)

log "building etcd $ETCD_VERSION"
prepare_module "$work/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION"
(
  cd "$work/etcd"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
)

log "building helm $HELM_VERSION"
GOBIN="$out" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"

for b in "${BINARIES[@]}"; do [[ -x "$out/$b" ]] || { log "missing $b after build"; exit 1; }; done
echo "$BUILD_ID" >"$out/.complete"
rm -rf "$TARGET" # a leftover without .complete from an older, interrupted layout
mv "$out" "$TARGET"
log "built $BUILD_ID in $((SECONDS - started)) s"
echo "$TARGET"
