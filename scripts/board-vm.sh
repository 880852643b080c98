#!/usr/bin/env bash
# An emulated arm64 board with a real Linux kernel: Debian's arm64 kernel under
# qemu-system-aarch64 (`virt`, Cortex-A72, 2 cores, 2 GiB), a busybox initramfs with Debian's
# arm64 glibc and libstdc++, the kernel's own i2c-dev, and its i2c-stub, ina2xx and ina3221
# drivers built out of tree (Debian's arm64 kernel leaves them out), `i2cset`/`i2cget`/
# `i2cdetect` (busybox), and the aarch64 release tarball installed as its INSTALL.txt says
# (unpacked under /opt, the models fetched with `models fetch --from`). Its device tree is
# QEMU's own for the machine with scripts/board-vm/board.dtsi added: an INA3221 on i2c-stub's
# bus with its channels labelled, as a Jetson's device tree labels them.
#
#   scripts/board-vm.sh --run 'shell commands'   boot, run them as root (joulebench on PATH,
#                                                 `modprobe` finds the four modules), print
#                                                 their output, exit with their status
#   scripts/board-vm.sh --build                  only make the image (cached) and print its
#                                                 folder
#   --single DIR     with --build: also write DIR/vmlinuz and DIR/initrd.cpio.gz, the image and
#                    the installed tarball in one archive, for tools that boot it themselves
#                    and repack its ramdisk (LAVA)
#   --tarball FILE   the aarch64 tarball (default: scripts/dist.sh's in $JOULEBENCH_CACHE,
#                    built if missing)
#   --userland bullseye   Debian 11's arm64 C library (glibc 2.31) and libstdc++ (GCC 10) in
#                    place of Debian 12's (2.36, GCC 12): older than LiteRT's library needs
#                    (glibc 2.34, GLIBCXX_3.4.30), as on JetPack 5 or Pi OS bullseye; a
#                    separate cached image
#
# The board is three cpio archives, which the kernel unpacks in order into one root: the image
# (kernel modules, busybox, the C library, /init), cached in $JOULEBENCH_CACHE/board-vm/ under
# the hash of what it is made of (this script, the patch, the Debian packages' versions); the
# install layer (the tarball installed, the models fetched), cached under the hash of the
# tarball and the models, and shared by both userlands; and the commands of one --run. A new
# commit's tarball so makes only a new install layer (seconds), not a new image (the kernel
# source unpacked, the modules built: most of a minute), and a run costs only the boot: about a
# second on x86-64, then the commands at emulated speed.
#
# What it needs: scripts/setup.sh --board-vm (qemu-system-arm, the arm64 cross compiler for the
# modules, linux-source-6.1, cpio; Debian's arm64 packages are fetched with apt-get download,
# so the arm64 architecture is added to dpkg's list). Where the host is not x86-64 the script
# says so and stops: the modules are cross-built for arm64 from an x86-64 host.
set -euo pipefail
cd "$(dirname "$0")/.."
script=$PWD/scripts/board-vm.sh

cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
vm=$cache/board-vm
target=aarch64-unknown-linux-gnu
tarball="" commands="" build_only=false userland=bookworm single=""
while [ $# -gt 0 ]; do
  case $1 in
    --run) commands=$2; shift 2 ;;
    --build) build_only=true; shift ;;
    --tarball) tarball=$2; shift 2 ;;
    --userland) userland=$2; shift 2 ;;
    --single) single=$2; shift 2 ;;
    *) echo "board-vm: unknown option $1 (known: --run COMMANDS, --build, --single DIR, --tarball FILE, --userland bullseye)" >&2; exit 2 ;;
  esac
done
if ! $build_only && [ -z "$commands" ]; then
  echo "board-vm: give --run 'commands' (or --build)" >&2
  exit 2
fi
if [ "$(uname -m)" != x86_64 ]; then
  echo "board-vm: the image is built on x86-64 hosts only (its modules are cross-built for arm64), not $(uname -m)" >&2
  exit 2
fi

scripts/setup.sh --board-vm
mkdir -p "$vm/debs"

# Debian's current arm64 kernel ABI (linux-image-arm64's dependency), and the packages the
# image is made of, fetched once per version.
abi=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: linux-image-\([0-9.]*-[0-9]*-arm64\).*/\1/p' | head -1)
[ -n "$abi" ] || { echo "board-vm: cannot find Debian's arm64 kernel (apt-cache depends linux-image-arm64:arm64)" >&2; exit 1; }
common=${abi%-arm64}-common
debs=(linux-image-$abi:arm64 linux-headers-$abi:arm64 linux-headers-$common:all linux-kbuild-6.1:amd64
  busybox-static:arm64 libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64)
want=()
for d in "${debs[@]}"; do
  version=$(apt-cache policy "$d" | sed -n 's/^ *Candidate: //p')
  [ -n "$version" ] && [ "$version" != "(none)" ] || { echo "board-vm: apt knows no $d" >&2; exit 1; }
  want+=("$d=$version")
  ls "$vm/debs/${d%%:*}_${version//:/%3a}_${d#*:}.deb" >/dev/null 2>&1 ||
    (cd "$vm/debs" && apt-get download -qq "$d=$version" 2>/dev/null) ||
    { echo "board-vm: apt-get download $d=$version failed" >&2; exit 1; }
done
deb() { ls "$vm/debs/${1}_"*"_${2}.deb" | sort -V | tail -1; }

# Debian 11's C library and C++ runtime for --userland bullseye, pinned by the SHA-256 that
# bullseye's arm64 Packages index gives them (the bookworm host's apt has no bullseye source).
declare -A bullseye=(
  [pool/main/g/glibc/libc6_2.31-13+deb11u11_arm64.deb]=baaa9aa184e2f21738c5819055e6740cc5b22f198e3f416e33f82b40ff6933d8
  [pool/main/g/gcc-10/libstdc++6_10.2.1-6_arm64.deb]=7869aa540cc46e9f3d4267d5bde2af0e5b429a820c1d6f1a4cfccfe788c31890
  [pool/main/g/gcc-10/libgcc-s1_10.2.1-6_arm64.deb]=e2fcdb378d3c1ad1bcb64d4fb6b37aab44011152beca12a4944f435a2582df1f
)
runtime_debs=()
case $userland in
  bookworm) for d in libc6 libstdc++6 libgcc-s1; do runtime_debs+=("$(deb "$d" arm64)"); done ;;
  bullseye)
    mkdir -p "$vm/debs/bullseye"
    for file in "${!bullseye[@]}"; do
      local_deb=$vm/debs/bullseye/$(basename "$file")
      if [ "$(sha256sum "$local_deb" 2>/dev/null | cut -d' ' -f1)" != "${bullseye[$file]}" ]; then
        curl -sfL -o "$local_deb.part" "https://deb.debian.org/debian/$file" ||
          { echo "board-vm: cannot download https://deb.debian.org/debian/$file" >&2; exit 1; }
        [ "$(sha256sum "$local_deb.part" | cut -d' ' -f1)" = "${bullseye[$file]}" ] ||
          { echo "board-vm: $file is not the file its SHA-256 pins" >&2; exit 1; }
        mv "$local_deb.part" "$local_deb"
      fi
      runtime_debs+=("$local_deb")
      want+=("$file")
    done ;;
  *) echo "board-vm: --userland must be bullseye (or the default, bookworm), not $userland" >&2; exit 2 ;;
esac

if [ -z "$tarball" ]; then
  tarball=$(ls "$cache/cross/dist/joulebench-"*"-$target.tar.gz" 2>/dev/null | tail -1 || true)
  [ -n "$tarball" ] || { scripts/dist.sh --out "$cache/cross/dist" "$target"; tarball=$(ls "$cache/cross/dist/joulebench-"*"-$target.tar.gz" | tail -1); }
fi
models=${MODELS_FROM:-../shared/models}
[ -d "$models" ] || models=${JOULEBENCH_MODELS_DIR:-$HOME/.local/share/joulebench/models}
[ -d "$models" ] || { echo "board-vm: no models folder ($models): run make models first" >&2; exit 1; }

key=$( { sha256sum "$script" scripts/board-vm/*.patch scripts/board-vm/board.dtsi | cut -d' ' -f1; printf '%s\n' "${want[@]}"; } |
  sha256sum | cut -c1-16)
image=$vm/image-$userland-$key
install_key=$( { sha256sum "$script" "$tarball" | cut -d' ' -f1
  (cd "$models" && find . -type f -print0 | sort -z | xargs -0 sha256sum); } | sha256sum | cut -c1-16)
install_layer=$vm/install-$install_key.cpio.gz
kver=$abi
# QEMU's virt machine as the board has it: its device tree is dumped with these options, and
# the board booted with them.
virt_options=(-cpu cortex-a72 -smp 2 -m 2048 -nographic -nic none)

build_image() {
  local work root
  work=$(mktemp -d "$vm/build.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  root=$work/root
  for d in linux-image-$abi linux-headers-$abi linux-headers-$common; do
    dpkg-deb -x "$(deb "$d" "$([ "$d" = "linux-headers-$common" ] && echo all || echo arm64)")" "$work/k"
  done
  dpkg-deb -x "$(deb linux-kbuild-6.1 amd64)" "$work/k"
  # The headers' Makefile includes the common headers by their installed path.
  local headers=$work/k/usr/src/linux-headers-$abi
  sed -i "s#/usr/src/linux-headers-$common#$work/k/usr/src/linux-headers-$common#" "$headers/Makefile"
  # The three drivers Debian's arm64 kernel does not build, from the same kernel's source.
  mkdir -p "$work/mod"
  tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$work" \
    linux-source-6.1/drivers/i2c/i2c-stub.c linux-source-6.1/drivers/hwmon/ina2xx.c linux-source-6.1/drivers/hwmon/ina3221.c
  # i2c-stub only stores words; scripts/board-vm/i2c-stub-ina219.patch lets the chip at its
  # ina219_addr parameter act as an INA219 on top of them (a reset that resets, current and
  # power registers that follow the calibration), which the INA219 drivers' start-up needs;
  # i2c-stub-of-node.patch gives the bus the device-tree node board.dtsi adds, so the devices
  # described there are created on it with their properties.
  patch -s -d "$work/linux-source-6.1" -p1 < scripts/board-vm/i2c-stub-ina219.patch
  patch -s -d "$work/linux-source-6.1" -p1 < scripts/board-vm/i2c-stub-of-node.patch
  cp "$work"/linux-source-6.1/drivers/*/{i2c-stub,ina2xx,ina3221}.c "$work/mod/"
  echo 'obj-m := i2c-stub.o ina2xx.o ina3221.o' > "$work/mod/Kbuild"
  make -s -C "$headers" M="$work/mod" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- modules 2>&1 |
    grep -v '^Skipping BTF generation' || true

  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,proc,sys,dev,tmp,root,etc,opt,var/lib}
  dpkg-deb -x "$(deb busybox-static arm64)" "$work/bb"
  cp "$work/bb/bin/busybox" "$root/bin/busybox"
  for d in "${runtime_debs[@]}"; do dpkg-deb -x "$d" "$root"; done
  rm -rf "$root/usr/share"
  local moddir=$root/lib/modules/$kver
  mkdir -p "$moddir/kernel/drivers/i2c" "$moddir/extra"
  cp "$work/k/lib/modules/$kver/kernel/drivers/i2c/i2c-dev.ko" "$moddir/kernel/drivers/i2c/"
  cp "$work"/mod/*.ko "$moddir/extra/"
  cp "$work/k/lib/modules/$kver/modules.builtin"* "$moddir/" 2>/dev/null || true

  printf 'root:x:0:0:root:/root:/bin/sh\nboard:x:1000:1000:board:/tmp:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\ni2c:x:998:\nboard:x:1000:\n' > "$root/etc/group"
  cat > "$root/etc/profile" <<'PROFILE'
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
export JOULEBENCH_MODELS_DIR=/var/lib/joulebench/models
export HOME=${HOME:-/root}
PS1="/ # "
PROFILE
  cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s
. /etc/profile
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
chmod 1777 /tmp
depmod -a
modprobe i2c-dev
echo "board-vm: ready"
if [ -f /cmd.sh ]; then
  cd /root
  sh /cmd.sh
  echo "board-vm: exit $?"
else
  setsid cttyhack sh -l
fi
poweroff -f
INIT
  chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.cpio.gz"
  mkdir -p "$work/image"
  mv "$work/initrd.cpio.gz" "$work/image/"
  cp "$work/k/boot/vmlinuz-$kver" "$work/image/vmlinuz"
  # QEMU's own device tree for this machine, with the board's additions (board.dtsi).
  qemu-system-aarch64 -M "virt,dumpdtb=$work/virt.dtb" "${virt_options[@]}" >"$work/dumpdtb.log" 2>&1 ||
    { echo "board-vm: QEMU did not dump its device tree:" >&2; cat "$work/dumpdtb.log" >&2; return 1; }
  { dtc -q -I dtb -O dts "$work/virt.dtb"; cat scripts/board-vm/board.dtsi; } |
    dtc -q -I dts -O dtb -o "$work/image/board.dtb" -
  rm -rf "$image"
  mv "$work/image" "$image"
  # Older images are of inputs no longer used.
  find "$vm" -maxdepth 1 -name "image-$userland-*" ! -path "$image" -exec rm -rf {} +
}

# The tarball as INSTALL.txt says: unpacked under /opt, then `models fetch --from` a models
# folder (run here under qemu-user on the cross compiler's arm64 C library, which gives the
# files the board would fetch); the tarball itself in /opt/dist, for what installs it on the
# board (LAVA's test definition).
build_install_layer() {
  local work root bin
  work=$(mktemp -d "$vm/build.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  root=$work/root
  mkdir -p "$root"/{opt/dist,usr/local/bin,var/lib/joulebench}
  tar -xzf "$tarball" -C "$root/opt"
  cp "$tarball" "$root/opt/dist/"
  bin=$(cd "$root/opt" && echo joulebench-*-"$target"/joulebench)
  ln -s "/opt/$bin" "$root/usr/local/bin/joulebench"
  JOULEBENCH_MODELS_DIR=$root/var/lib/joulebench/models qemu-aarch64-static -L /usr/aarch64-linux-gnu \
    "$root/opt/$bin" models fetch --from "$models" >"$work/fetch.log" 2>&1 ||
    { echo "board-vm: models fetch --from failed under qemu-user:" >&2; cat "$work/fetch.log" >&2; return 1; }
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/install.cpio.gz"
  mv "$work/install.cpio.gz" "$install_layer"
  find "$vm" -maxdepth 1 -name "install-*.cpio.gz" ! -path "$install_layer" -delete
}

if [ ! -f "$image/initrd.cpio.gz" ]; then
  echo "board-vm: building the image ($abi, $userland's C library)"
  build_image
fi
if [ ! -f "$install_layer" ]; then
  echo "board-vm: installing $(basename "$tarball") and the models"
  build_install_layer
fi
if [ -n "$single" ]; then
  # One archive: a ramdisk that is unpacked and packed again (LAVA's overlay) would keep only
  # the first of concatenated archives.
  merged=$(mktemp -d "$vm/single.XXXXXX")
  (cd "$merged" && for part in "$image/initrd.cpio.gz" "$install_layer"; do
    gzip -dc "$part" | cpio -idm --quiet --no-absolute-filenames; done)
  mkdir -p "$single"
  (cd "$merged" && find . | cpio -o -H newc --quiet | gzip -1) > "$single/initrd.cpio.gz"
  rm -rf "$merged"
  cp "$image/vmlinuz" "$single/vmlinuz"
fi
$build_only && { echo "board-vm: $image"; exit 0; }

run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
mkdir -p "$run/cmd"
printf '%s\n' "$commands" > "$run/cmd/cmd.sh"
(cd "$run/cmd" && echo cmd.sh | cpio -o -H newc --quiet | gzip -1) > "$run/cmd.cpio.gz"
cat "$image/initrd.cpio.gz" "$install_layer" "$run/cmd.cpio.gz" > "$run/initrd.cpio.gz"
timeout "${BOARD_VM_TIMEOUT_S:-900}" qemu-system-aarch64 -M virt "${virt_options[@]}" -dtb "$image/board.dtb" \
  -no-reboot -kernel "$image/vmlinuz" -initrd "$run/initrd.cpio.gz" \
  -append "console=ttyAMA0 rdinit=/init quiet loglevel=1 panic=-1" </dev/null 2>&1 | tr -d '\r' > "$run/console" || true
# What the commands printed: the lines between the markers /init writes.
sed -n '/^board-vm: ready$/,/^board-vm: exit [0-9]*$/p' "$run/console" | sed '1d;$d'
status=$(sed -n 's/^board-vm: exit \([0-9]*\)$/\1/p' "$run/console" | tail -1)
if [ -z "$status" ]; then
  echo "board-vm: the guest did not finish the commands; its console:" >&2
  tail -40 "$run/console" >&2
  exit 1
fi
exit "$status"
