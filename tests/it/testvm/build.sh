#!/usr/bin/env bash
# build.sh OUTDIR -- build the tiny QEMU guest used by the QEMU integration tests.
#
# Output (nothing is installed on the host; downloads and scratch stay in OUTDIR/.build):
#   OUTDIR/vmlinuz     Debian's amd64 kernel (the package linux-image-amd64 depends on)
#   OUTDIR/initrd.img  busybox-static + the e1000/virtio-net modules + an /init script
#   OUTDIR/disk.qcow2  an empty 16 MiB qcow2 disk (needs qemu-img, nothing else of QEMU)
#
# Kernel command line read by /init (use it with "console=ttyS0 quiet"):
#   ip=ADDR/LEN  eth0 address (default 10.0.0.3/24); ip=none leaves eth0 alone
#   gw=ADDR      default route (optional)
#   vmname=NAME  hostname and prompt (default testvm)
# Once per boot ttyS0 shows "TESTVM-READY name=NAME ip=ADDR/LEN mac=MAC", then an
# interactive shell with the prompt "NAME# " (respawned if it exits).
#
# Idempotent: OUTDIR/.stamp holds a hash of this script; when it matches and the three
# files exist, nothing is done.
set -euo pipefail

out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/.build
stamp=$out/.stamp
want=$(sha256sum "$0" | cut -d' ' -f1)

if [[ -s $out/vmlinuz && -s $out/initrd.img && -s $out/disk.qcow2 &&
      $(cat "$stamp" 2>/dev/null) == "$want" ]]; then
  exit 0
fi
command -v qemu-img >/dev/null || { echo "build.sh: qemu-img not found" >&2; exit 1; }

# --- fetch the two packages (retry once after refreshing the apt lists) -------------
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null |
         sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1; }
rm -rf "$work"; mkdir -p "$work/debs"
download() {
  local k; k=$(kpkg)
  [[ -n $k ]] && (cd "$work/debs" && apt-get download -q "$k" busybox-static) >/dev/null 2>&1
}
download || { apt-get update -q >/dev/null 2>&1 || true; download; } ||
  { echo "build.sh: apt-get download failed" >&2; exit 1; }
kver=$(kpkg); kver=${kver#linux-image-}

# --- unpack: the kernel image, the NIC driver modules, busybox ----------------------
mkdir -p "$work/k"
dpkg-deb -x "$work"/debs/busybox-static_*.deb "$work/bb"
bb=$work/bb/bin/busybox                       # static, so it also runs on the host
dpkg-deb --fsys-tarfile "$work"/debs/linux-image-*.deb |
  tar -x -C "$work/k" --wildcards \
    "./boot/vmlinuz-$kver" '*/e1000.ko' '*/virtio_net.ko' '*/failover.ko' \
    '*/net_failover.ko' '*/drivers/virtio/virtio.ko' '*/drivers/virtio/virtio_ring.ko' \
    '*/drivers/virtio/virtio_pci*.ko'

# --- the initramfs tree --------------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,root,lib/modules}
cp "$bb" "$root/bin/busybox"
cp -r "$work/k/lib/modules/$kver" "$root/lib/modules/"
"$bb" depmod -b "$root" "$kver"               # lets the guest use plain modprobe

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo 1 >/proc/sys/kernel/printk                # keep driver chatter off the console
modprobe -a e1000 virtio_pci virtio_net 2>/dev/null

ip=10.0.0.3/24 gw= name=testvm
for arg in $(cat /proc/cmdline); do
  case $arg in ip=*) ip=${arg#ip=} ;; gw=*) gw=${arg#gw=} ;; vmname=*) name=${arg#vmname=} ;; esac
done
hostname "$name"
ip link set lo up
if [ "$ip" != none ] && [ -e /sys/class/net/eth0 ]; then
  ip addr add "$ip" dev eth0 && ip link set eth0 up
  [ -n "$gw" ] && ip route add default via "$gw"
  # e1000 reports carrier a moment after "up"; frames arriving before are dropped, so
  # wait (at most 5 s: the host may hold the link down) before announcing READY.
  n=0
  while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $n -lt 50 ]; do
    sleep 0.1; n=$((n+1))
  done
fi
mac=$(cat /sys/class/net/eth0/address 2>/dev/null)

echo "TESTVM-READY name=$name ip=$ip mac=$mac" >/dev/ttyS0
export PS1="$name# "
cd /root
# PID 1 must never exit: respawn the shell, in its own session with ttyS0 as its
# controlling tty (so ^C and job control work).
while :; do setsid -c sh -i <>/dev/ttyS0 >&0 2>&1; sleep 1; done
EOF
chmod 755 "$root/init"

# --- outputs (written to temporary names, then renamed) -------------------------------
(cd "$root" && find . | sort | "$bb" cpio -o -H newc 2>/dev/null) | gzip -6 >"$out/initrd.img.tmp"
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
rm -f "$out/disk.qcow2.tmp"
qemu-img create -q -f qcow2 "$out/disk.qcow2.tmp" 16M
for f in initrd.img vmlinuz disk.qcow2; do mv "$out/$f.tmp" "$out/$f"; done
rm -rf "$work"                                 # ~70 MB of downloads; keep only the outputs
echo "$want" >"$stamp"
echo "build.sh: built $out (kernel $kver)" >&2
