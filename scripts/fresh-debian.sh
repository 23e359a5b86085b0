#!/usr/bin/env bash
# Runs the README's test command on a stock Debian 12 that has only the Rust toolchain: a
# minimal bookworm made by debootstrap (root, apt access needed), with this machine's stable
# toolchain copied in and a clone of this repository's HEAD at the same path as here. Nothing
# else is installed: scripts/test.sh must install apt packages, the Python venv, Garage and the
# rest itself, as it would on a new machine.
#   sudo scripts/fresh-debian.sh [ROOTFS]       (default /srv/deb12; reused when present)
# REUSE_BUILD=1 copies target/debug (without incremental data) into the clone first, to skip
# the cold compile (about an hour on 2 cores); what is checked is the environment, not rustc.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
ROOTFS=${1:-/srv/deb12}
[ "$(id -u)" -eq 0 ] || { echo "run as root (chroot)" >&2; exit 1; }

if [ ! -x "$ROOTFS/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
  debootstrap --variant=minbase bookworm "$ROOTFS" http://deb.debian.org/debian
fi

# Only the Rust toolchain: rustup's proxies and the default toolchain.
TOOLCHAIN=$(rustup default | cut -d' ' -f1)
mkdir -p "$ROOTFS/root/.cargo/bin" "$ROOTFS/root/.rustup/toolchains"
for b in cargo rustc rustup rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
  cp -a "$HOME/.cargo/bin/$b" "$ROOTFS/root/.cargo/bin/"
done
cp -a "$HOME/.rustup/settings.toml" "$ROOTFS/root/.rustup/"
[ -d "$ROOTFS/root/.rustup/toolchains/$TOOLCHAIN" ] \
  || cp -a "$HOME/.rustup/toolchains/$TOOLCHAIN" "$ROOTFS/root/.rustup/toolchains/"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# The network's own CAs (an egress proxy here), as any machine on this network has them; the
# ca-certificates package that test.sh installs adds them to the system bundle.
mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
cp -a /usr/local/share/ca-certificates/. "$ROOTFS/usr/local/share/ca-certificates/"
if [ -x "$ROOTFS/usr/sbin/update-ca-certificates" ]; then
  chroot "$ROOTFS" update-ca-certificates >/dev/null
fi

# The repository at the same path, as a fresh clone of HEAD.
rm -rf "${ROOTFS:?}$REPO.new"
git clone -q "$REPO" "$ROOTFS$REPO.new"
if [ -d "$ROOTFS$REPO/target" ]; then mv "$ROOTFS$REPO/target" "$ROOTFS$REPO.new/target"; fi
rm -rf "${ROOTFS:?}$REPO"
mv "$ROOTFS$REPO.new" "$ROOTFS$REPO"
if [ "${REUSE_BUILD:-}" = 1 ] && [ ! -d "$ROOTFS$REPO/target/debug/deps" ]; then
  mkdir -p "$ROOTFS$REPO/target/debug"
  # Files of imgfn itself may vanish mid-copy when a build runs here; they are rebuilt anyway.
  for d in deps build .fingerprint; do
    cp -a "$REPO/target/debug/$d" "$ROOTFS$REPO/target/debug/" 2>/dev/null || true
  done
fi

mounts=(proc sys dev dev/pts dev/shm)
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -l "$ROOTFS/${mounts[$i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
for m in "${mounts[@]}"; do
  mkdir -p "$ROOTFS/$m"
  mount --bind "/$m" "$ROOTFS/$m"
done

# A clean environment but for where the network's CA bundle is (pip's own certifi bundle
# would not know an egress proxy's CA).
chroot "$ROOTFS" /usr/bin/env -i HOME=/root TERM=dumb CI="${CI:-}" \
  SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
  PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  bash -c "cd '$REPO' && command -v python3 || echo 'no python3 yet (as on a stock Debian)'; \
           bash scripts/test.sh"
