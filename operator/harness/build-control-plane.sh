#!/usr/bin/env bash
# Builds the pinned control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kubectl, helm) from the Go module proxy into a versioned cache outside the clone, and
# prints the folder that holds them. Safe to run twice at once; a half-finished build is
# never mistaken for a finished one (the folder appears by an atomic rename only when complete).
#
#   bash build-control-plane.sh            the control plane (what the tests and the sandbox run)
#   bash build-control-plane.sh node       kubelet, kube-proxy and kube-scheduler of the same Kubernetes
#                                          version (what a harness node runs: operator/harness/node.ts)
#   bash build-control-plane.sh versions   the resolved versions, one `name=value` a line
#
# DEVICEPASS_KUBERNETES_VERSION picks the version: a minor of the table below (1.35), or a full
# version (1.35.4, v1.35.0) of a minor in it; default: the newest row.
set -euo pipefail

# The one table of pinned versions: per supported minor, the newest patch the Go module proxy
# serves, the etcd controller-tools' envtest pairs with that minor (hack/envtest/_matrix), and a
# helm whose client-go is of the newest minor here (helm supports its own minor and three older).
PINNED_VERSIONS="
1.37 v1.37.2 v3.7.0 v3.22.0
1.36 v1.36.3 v3.6.8 v3.22.0
1.35 v1.35.4 v3.6.6 v3.22.0
"

MODE="${1:-control-plane}"
case "$MODE" in control-plane | node | versions) ;; *)
  echo "usage: $0 [control-plane|node|versions]" >&2
  exit 2
  ;;
esac

log() { echo "build-control-plane: $*" >&2; }

# Resolves DEVICEPASS_KUBERNETES_VERSION (or the table's first row) into the three versions.
requested="${DEVICEPASS_KUBERNETES_VERSION:-}"
requested="${requested#v}"
if [[ -z $requested ]]; then
  read -r _ KUBERNETES_VERSION ETCD_VERSION HELM_VERSION <<<"$(echo "$PINNED_VERSIONS" | awk 'NF { print; exit }')"
else
  if [[ ! $requested =~ ^1\.([0-9]+)(\.[0-9]+)?$ ]]; then
    log "DEVICEPASS_KUBERNETES_VERSION=$DEVICEPASS_KUBERNETES_VERSION is neither a minor (1.35) nor a version (1.35.4)"
    exit 2
  fi
  requested_minor="1.${BASH_REMATCH[1]}" requested_patch="${BASH_REMATCH[2]}"
  row="$(echo "$PINNED_VERSIONS" | awk -v minor="$requested_minor" '$1 == minor')"
  if [[ -z $row ]]; then
    log "Kubernetes $requested_minor is not supported; supported minors: $(echo "$PINNED_VERSIONS" | awk 'NF { printf "%s ", $1 }')"
    exit 2
  fi
  read -r _ KUBERNETES_VERSION ETCD_VERSION HELM_VERSION <<<"$row"
  [[ -z $requested_patch ]] || KUBERNETES_VERSION="v$requested"
fi

if [[ $MODE == versions ]]; then
  printf 'kubernetes=%s\netcd=%s\nhelm=%s\n' "$KUBERNETES_VERSION" "$ETCD_VERSION" "$HELM_VERSION"
  exit 0
fi

CACHE_ROOT="${DEVICEPASS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/devicepass}"
PLATFORM="$(go env GOOS)-$(go env GOARCH)"
if [[ $MODE == node ]]; then
  BUILD_ID="node-k8s-${KUBERNETES_VERSION}-${PLATFORM}"
  KUBERNETES_COMMANDS=(kubelet kube-proxy kube-scheduler)
  BINARIES=(kubelet kube-proxy kube-scheduler)
else
  BUILD_ID="k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}-${PLATFORM}"
  KUBERNETES_COMMANDS=(kube-apiserver kube-controller-manager kubectl)
  BINARIES=(etcd kube-apiserver kube-controller-manager kubectl helm)
fi
TARGET="$CACHE_ROOT/bin/$BUILD_ID"

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
  for cmd in "${KUBERNETES_COMMANDS[@]}"; do
    go get "k8s.io/kubernetes/cmd/$cmd@$KUBERNETES_VERSION" >/dev/null 2>&1 || go get "k8s.io/kubernetes/cmd/$cmd"
  done
  for cmd in "${KUBERNETES_COMMANDS[@]}"; do
    log "building $cmd"
    go build -trimpath -ldflags "-s -w $version_flags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
)

if [[ $MODE == control-plane ]]; then
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
fi

for b in "${BINARIES[@]}"; do [[ -x "$out/$b" ]] || { log "missing $b after build"; exit 1; }; done
echo "$BUILD_ID" >"$out/.complete"
rm -rf "$TARGET" # a leftover without .complete from an older, interrupted layout
mv "$out" "$TARGET"
log "built $BUILD_ID in $((SECONDS - started)) s"
echo "$TARGET"
