#!/usr/bin/env bash
# Removes everything a harness node (operator/harness/node.ts) made outside its processes: the
# pods' processes (by the node's cgroup root), containerd's shims (by its socket), the mounts
# under the node's folder, its cgroups, its network namespace and veth, then the folder itself.
# Run by ClusterNode.stop() and by the watchdog when the test runner died. Idempotent.
set -u
dir="$1"
[[ -f "$dir/node.env" ]] || { rm -rf --one-file-system "$dir"; exit 0; }
# NETNS, HOST_INTERFACE, CGROUP_ROOT, CONTAINERD_SOCKET
source "$dir/node.env"

kill_pids() { [[ -z "$*" ]] || kill -KILL "$@" 2>/dev/null; }

# Every process of a pod lives in the node's cgroups; the pids hierarchy lists them all.
cgroup_pids() { find "/sys/fs/cgroup/pids$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null; }
# containerd's shims outlive containerd (they are reparented to init); their command line names the socket.
shim_pids() {
  local proc cmdline
  for proc in /proc/[0-9]*; do
    cmdline="$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null)"
    [[ $cmdline == *"-address $CONTAINERD_SOCKET"* ]] && echo "${proc#/proc/}"
  done
}
for _ in 1 2 3 4 5 6 7 8 9 10; do
  pids="$(cgroup_pids) $(shim_pids)"
  [[ -z "${pids// /}" ]] && break
  # shellcheck disable=SC2086
  kill_pids $pids
  sleep 0.3
done

# Mounts under the folder (Secret volumes, overlay root filesystems, the pods' network namespaces), deepest first.
grep -F " $dir/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r mount; do
  umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null
done

# The cgroups the kubelet and runc made under the node's root, deepest first, in every hierarchy.
for hierarchy in /sys/fs/cgroup/*; do
  [[ -d "$hierarchy$CGROUP_ROOT" ]] || continue
  find "$hierarchy$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null
done

# Deleting the namespace deletes the veth pair with it.
ip netns delete "$NETNS" 2>/dev/null
ip link delete "$HOST_INTERFACE" 2>/dev/null
rm -rf --one-file-system "$dir"
exit 0
