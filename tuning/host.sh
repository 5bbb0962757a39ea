#!/usr/bin/env bash
# Reports the operating-system settings smppgw depends on (see tuning/README.md), what each
# is now and what this script would set; with --apply (as root) it sets the sysctl and CPU
# governor knobs. Limits of the service itself (LimitMEMLOCK, LimitNOFILE, CPUAffinity) belong
# in its systemd unit (tuning/smppgw.service) and are only reported.
#
# usage: tuning/host.sh [--apply] [--spool DIR]
set -euo pipefail

apply=0
spool=""
while [ $# -gt 0 ]; do
  case "$1" in
    --apply) apply=1 ;;
    --spool) spool="${2:?--spool needs a directory}"; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$apply" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "--apply needs root" >&2
  exit 2
fi

changes=0
row() { printf '%-34s %-18s %-18s %s\n' "$1" "$2" "$3" "$4"; }
row "knob" "now" "wanted" "note"
row "----" "---" "------" "----"

# A sysctl that should be at least (or exactly) a value.
sysctl_knob() {
  local key=$1 want=$2 mode=$3 note=$4
  local path="/proc/sys/${key//.//}"
  if [ ! -r "$path" ]; then
    row "$key" "(absent)" "$want" "$note"
    return
  fi
  local now
  now=$(tr '\t' ' ' < "$path")
  local ok=1
  case "$mode" in
    min) [ "${now%% *}" -ge "$want" ] || ok=0 ;;
    eq) [ "$now" = "$want" ] || ok=0 ;;
  esac
  if [ "$ok" = 1 ]; then
    row "$key" "$now" "$want" "ok"
  else
    changes=$((changes + 1))
    if [ "$apply" = 1 ]; then
      sysctl -q -w "$key=$want" && row "$key" "$now" "$want" "SET ($note)"
    else
      row "$key" "$now" "$want" "would set: $note"
    fi
  fi
}

sysctl_knob kernel.io_uring_disabled 0 eq "io_uring must be allowed"
sysctl_knob net.core.somaxconn 4096 min "bind storms after a restart"
sysctl_knob net.ipv4.tcp_max_syn_backlog 4096 min "bind storms after a restart"
sysctl_knob net.core.rmem_max 16777216 min "socket buffers of busy links"
sysctl_knob net.core.wmem_max 16777216 min "socket buffers of busy links"
sysctl_knob fs.nr_open 1048576 min "room for LimitNOFILE"

# Limits of this shell (the service's come from its unit).
memlock_soft=$(ulimit -l); memlock_hard=$(ulimit -Hl)
row "RLIMIT_MEMLOCK (this shell)" "$memlock_soft/$memlock_hard KiB" ">= 512 KiB hard" \
  "$( [ "$memlock_hard" = unlimited ] || [ "$memlock_hard" -ge 512 ] && echo ok || echo 'LimitMEMLOCK=8M in the unit')"
nofile=$(ulimit -n)
row "RLIMIT_NOFILE (this shell)" "$nofile" ">= 65536" \
  "$( [ "$nofile" -ge 65536 ] && echo ok || echo 'LimitNOFILE=65536 in the unit')"

# CPUs: the governor, and whether irqbalance moves interrupts onto the gateway's cores.
gov_files=$(ls /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor 2>/dev/null || true)
if [ -n "$gov_files" ]; then
  govs=$(cat $gov_files | sort | uniq -c | awk '{print $2"x"$1}' | tr '\n' ' ')
  if echo "$govs" | grep -qv performance; then
    changes=$((changes + 1))
    if [ "$apply" = 1 ]; then
      for f in $gov_files; do echo performance > "$f"; done
      row "cpufreq governor" "$govs" "performance" "SET"
    else
      row "cpufreq governor" "$govs" "performance" "would set: steadier latency"
    fi
  else
    row "cpufreq governor" "$govs" "performance" "ok"
  fi
else
  row "cpufreq governor" "(no cpufreq)" "performance" "virtual machine or fixed clock"
fi
if pgrep -x irqbalance >/dev/null 2>&1; then
  row "irqbalance" "running" "banned from shard cores" "IRQBALANCE_BANNED_CPULIST=<shard CPUs>"
else
  row "irqbalance" "not running" "-" "pin NIC queues with /proc/irq/*/smp_affinity_list"
fi
row "CPUs online" "$(nproc --all)" "-" "shards=auto uses the CPUs the process is given ($(nproc) here)"

# The spool's disk: its device, whether it takes polled IO, and the cost of an fdatasync.
if [ -n "$spool" ]; then
  mkdir -p "$spool"
  dev=$(df --output=source "$spool" 2>/dev/null | tail -1)
  fstype=$(df --output=fstype "$spool" 2>/dev/null | tail -1)
  base=$(basename "$(readlink -f "$dev" 2>/dev/null || echo "$dev")" | sed 's/[0-9]*$//; s/p$//')
  poll=$(cat "/sys/block/$base/queue/io_poll" 2>/dev/null || echo "?")
  rot=$(cat "/sys/block/$base/queue/rotational" 2>/dev/null || echo "?")
  row "spool device" "$dev ($fstype)" "own fast disk" "rotational=$rot io_poll=$poll (log_io=auto picks buffered when 0)"
  if [ "$fstype" = tmpfs ]; then
    row "spool on tmpfs" "yes" "no" "nothing survives a reboot: tests only"
  fi
  probe="$spool/.smppgw-host-probe"
  if command -v python3 >/dev/null 2>&1; then
    us=$(python3 - "$probe" <<'PY'
import os, sys, time
p = sys.argv[1]
fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
lat = []
for i in range(200):
    os.pwrite(fd, b"\0" * 4096, i * 4096)
    t = time.perf_counter(); os.fdatasync(fd); lat.append(time.perf_counter() - t)
os.close(fd); os.unlink(p)
lat.sort()
print(f"{lat[100]*1e6:.0f}/{lat[197]*1e6:.0f}")
PY
)
    row "fdatasync 4 KiB p50/p99 (us)" "$us" "< 500 p99" "group commit needs tens of records per sync above ~300"
  fi
fi

echo
if [ "$apply" = 1 ]; then
  echo "$changes setting(s) changed (sysctl changes last until reboot: persist them in /etc/sysctl.d/)"
else
  echo "$changes setting(s) would change; run with --apply as root to set them"
fi
