#!/bin/sh
# /init of the nested platform (pvgen nested): load KVM with nested virtualization, put the host's filesystem
# (9p, read-only, under a RAM overlay) back together as /, run the command the host wrote, hand its status back.
# The host's shares (mount tags): hostroot = its /, pvctl = this run's control folder (run.sh, status),
# pvout = the folder the command may write (mounted at its own host path). ttyS0 = kernel console,
# ttyS1 = the command's stdout, ttyS2 = its stderr.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

fail() {
	echo "PVGEN-NESTED-ERROR $*"
	poweroff -f
}
p9="trans=virtio,version=9p2000.L,msize=512000"

for m in virtio_pci 9pnet_virtio 9p overlay; do
	modprobe "$m" || fail "modprobe $m"
done
if grep -q '^flags.* svm' /proc/cpuinfo; then
	modprobe kvm_amd nested=1 npt=1 || fail "modprobe kvm_amd"
elif grep -q '^flags.* vmx' /proc/cpuinfo; then
	modprobe kvm_intel nested=1 ept=1 || fail "modprobe kvm_intel"
else
	fail "this CPU shows neither SVM nor VMX"
fi
[ -c /dev/kvm ] || fail "no /dev/kvm after loading KVM"

mkdir -p /ctl /lower /upper /newroot
mount -t 9p -o "$p9" pvctl /ctl || fail "mount pvctl"
. /ctl/config
mount -t 9p -o "$p9,ro,cache=loose" hostroot /lower || fail "mount hostroot"
mount -t tmpfs -o size=75% upper /upper && mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w root /newroot || fail "mount overlay"
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs tmp /newroot/tmp
mkdir -p /newroot/run/pvgen-nested "/newroot$OUTDIR"
mount --move /ctl /newroot/run/pvgen-nested
mount -t 9p -o "$p9" pvout "/newroot$OUTDIR" || fail "mount pvout at $OUTDIR"

for t in ttyS1 ttyS2; do
	stty -F "/dev/$t" 115200 raw -echo
done
mkfifo /out /err
cat /out >/dev/ttyS1 &
o=$!
cat /err >/dev/ttyS2 &
e=$!
chroot /newroot /bin/sh /run/pvgen-nested/run.sh </dev/null >/out 2>/err
echo $? >/newroot/run/pvgen-nested/status
wait $o $e
sync
poweroff -f
